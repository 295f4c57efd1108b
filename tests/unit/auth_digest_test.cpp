#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

#include "auth/digest.hpp"

namespace sw::auth {
namespace {

constexpr Algorithm kAllAlgorithms[] = {Algorithm::md5,        Algorithm::md5_sess,
                                        Algorithm::sha256,     Algorithm::sha256_sess,
                                        Algorithm::sha512_256, Algorithm::sha512_256_sess};
constexpr Qop kAllQops[] = {Qop::none, Qop::auth, Qop::auth_int};

// ---- hashes and names -------------------------------------------------------

TEST(DigestHash, KnownAnswers) {
  struct Row {
    Algorithm algorithm;
    std::string_view input;
    std::string_view hex;
  };
  const Row rows[] = {
      {Algorithm::md5, "abc", "900150983cd24fb0d6963f7d28e17f72"},
      {Algorithm::md5, "", "d41d8cd98f00b204e9800998ecf8427e"},
      {Algorithm::sha256, "abc",
       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      // FIPS 180-4 SHA-512/256, its own initial values; a truncated SHA-512
      // would give ddaf35a193617aba...
      {Algorithm::sha512_256, "abc",
       "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"},
      {Algorithm::sha512_256, "",
       "c672b8d1ef56ed28ab87c3622c5114069bdd3ad7b8f9737498d0c01ecef0967a"},
      // -sess names hash with their base function.
      {Algorithm::md5_sess, "abc", "900150983cd24fb0d6963f7d28e17f72"},
      {Algorithm::sha256_sess, "abc",
       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {Algorithm::sha512_256_sess, "abc",
       "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(std::string(to_string(r.algorithm)) + " of \"" + std::string(r.input) + "\"");
    EXPECT_EQ(hash_hex(r.algorithm, r.input), r.hex);
  }
}

TEST(DigestNames, Algorithms) {
  struct Row {
    std::string_view text;
    std::optional<Algorithm> parsed;
  };
  const Row rows[] = {
      {"MD5", Algorithm::md5},
      {"md5", Algorithm::md5},
      {"MD5-sess", Algorithm::md5_sess},
      {"MD5-SESS", Algorithm::md5_sess},
      {"SHA-256", Algorithm::sha256},
      {"sha-256-sess", Algorithm::sha256_sess},
      {"SHA-512-256", Algorithm::sha512_256},
      {"SHA-512-256-sess", Algorithm::sha512_256_sess},
      {"", std::nullopt},
      {"SHA256", std::nullopt},
      {"SHA-512", std::nullopt},
      {"SHA3-256", std::nullopt},
      {"AKAv1-MD5", std::nullopt},
      {"MD5 ", std::nullopt},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.text);
    EXPECT_EQ(parse_algorithm(r.text), r.parsed);
  }
  for (auto a : kAllAlgorithms) {
    SCOPED_TRACE(to_string(a));
    EXPECT_EQ(parse_algorithm(to_string(a)), a);
    EXPECT_FALSE(is_sess(base_of(a)));
    EXPECT_EQ(base_of(base_of(a)), base_of(a));
  }
  EXPECT_TRUE(is_sess(Algorithm::md5_sess));
  EXPECT_TRUE(is_sess(Algorithm::sha256_sess));
  EXPECT_TRUE(is_sess(Algorithm::sha512_256_sess));
  EXPECT_EQ(base_of(Algorithm::md5_sess), Algorithm::md5);
  EXPECT_EQ(base_of(Algorithm::sha256_sess), Algorithm::sha256);
  EXPECT_EQ(base_of(Algorithm::sha512_256_sess), Algorithm::sha512_256);
}

TEST(DigestNames, Qops) {
  EXPECT_EQ(parse_qop("auth"), Qop::auth);
  EXPECT_EQ(parse_qop("AUTH"), Qop::auth);
  EXPECT_EQ(parse_qop("auth-int"), Qop::auth_int);
  EXPECT_EQ(parse_qop("auth-conf"), std::nullopt);
  EXPECT_EQ(parse_qop(""), std::nullopt);
  EXPECT_EQ(to_string(Qop::none), "");
  EXPECT_EQ(to_string(Qop::auth), "auth");
  EXPECT_EQ(to_string(Qop::auth_int), "auth-int");
}

// ---- responses --------------------------------------------------------------

struct Vector {
  const char* name;
  Algorithm algorithm;
  std::string_view username, realm, password, method, uri, nonce, cnonce, nc;
  Qop qop;
  std::string_view response;
};

TEST(Digest, PublishedVectors) {
  const Vector rows[] = {
      {"RFC 2617 3.5", Algorithm::md5, "Mufasa", "testrealm@host.com", "Circle Of Life", "GET",
       "/dir/index.html", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "0a4f113b", "00000001", Qop::auth,
       "6629fae49393a05397450978507c4ef1"},
      {"RFC 2069 2.4 (no qop)", Algorithm::md5, "Mufasa", "testrealm@host.com", "CircleOfLife",
       "GET", "/dir/index.html", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "", "", Qop::none,
       "1949323746fe6a43ef61f9606e7febea"},
      {"RFC 7616 3.9.1 MD5", Algorithm::md5, "Mufasa", "http-auth@example.org", "Circle of Life",
       "GET", "/dir/index.html", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "00000001", Qop::auth,
       "8ca523f5e9506fed4657c9700eebdbec"},
      {"RFC 7616 3.9.1 SHA-256", Algorithm::sha256, "Mufasa", "http-auth@example.org",
       "Circle of Life", "GET", "/dir/index.html", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "00000001", Qop::auth,
       "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    const std::string ha1 = compute_ha1(r.algorithm, r.username, r.realm, r.password);
    DigestInput in;
    in.algorithm = r.algorithm;
    in.ha1 = ha1;
    in.nonce = r.nonce;
    in.cnonce = r.cnonce;
    in.nc = r.nc;
    in.qop = r.qop;
    in.method = r.method;
    in.uri = r.uri;
    EXPECT_EQ(compute_response(in), r.response);
    EXPECT_TRUE(equal_constant_time(compute_response(in), r.response));
  }
  EXPECT_EQ(compute_ha1(Algorithm::md5, "Mufasa", "testrealm@host.com", "Circle Of Life"),
            "939e7578ed9e3c518a452acee763bce9");
}

// Inputs shared by the known-answer and round-trip tests.
constexpr std::string_view kUser = "alice", kRealm = "lab.example", kPassword = "s3cret";
constexpr std::string_view kNonce = "n0nce", kCnonce = "c0nce", kNc = "00000001";
constexpr std::string_view kMethod = "INVITE", kUri = "sip:bob@lab.example", kBody = "v=0\r\n";

DigestInput input(Algorithm a, Qop q, const std::string& ha1) {
  DigestInput in;
  in.algorithm = a;
  in.ha1 = ha1;
  in.nonce = kNonce;
  in.cnonce = kCnonce;
  in.nc = kNc;
  in.qop = q;
  in.method = kMethod;
  in.uri = kUri;
  in.body = kBody;
  return in;
}

// Expected values computed outside this code base (Python hashlib, straight
// from the RFC formulas), so that -sess, auth-int and SHA-512-256 each have an
// independent check, not only the round trip.
TEST(Digest, IndependentKnownAnswers) {
  struct Row {
    Algorithm algorithm;
    Qop qop;
    SessVariant variant;
    std::string_view response;
  };
  const Row rows[] = {
      {Algorithm::md5, Qop::none, SessVariant::hex, "0a11c53a5ba687a85aa64e9eeb84830d"},
      {Algorithm::md5, Qop::auth, SessVariant::hex, "95b55d4afa71d17e89523f0403894cd8"},
      {Algorithm::md5, Qop::auth_int, SessVariant::hex, "0ef303b32fa8b305710c2e2cb8f6cc5e"},
      {Algorithm::md5_sess, Qop::auth, SessVariant::hex, "80e117157d2f1eb0c79aed801ca085aa"},
      {Algorithm::md5_sess, Qop::auth, SessVariant::raw, "235a7b33c8f21d9cbcb81a8a9db6d4ca"},
      {Algorithm::sha256, Qop::none, SessVariant::hex,
       "609034ac3953939d1a08afafc9cc324e4a94620f7821a5b4fb993ab3b1bba96b"},
      {Algorithm::sha256, Qop::auth_int, SessVariant::hex,
       "1a835edddaaae1dd91f9f13f30c6152a10784c0cec4a3bd3c8222126b203d5a3"},
      {Algorithm::sha256_sess, Qop::auth, SessVariant::hex,
       "cbe6c95a93617d79abdaee425acca09d4e4a866f1de0af90dc5a281ec8584599"},
      {Algorithm::sha256_sess, Qop::auth, SessVariant::raw,
       "06b6891502a2f2e95acabbfb8b7ac411ec364b28700dafc746639920009f5e1b"},
      {Algorithm::sha512_256, Qop::none, SessVariant::hex,
       "1c0dc717327d689a25ffc853f73eb68e19fa9a7d13d8eeae73b3d639d4f04b29"},
      {Algorithm::sha512_256, Qop::auth, SessVariant::hex,
       "a77d2a78501b172dc04a33226d019b5f4ac93190f903fab59d4751dcca95aefb"},
      {Algorithm::sha512_256, Qop::auth_int, SessVariant::hex,
       "9ce1e62b2b068ccff0aa56b69f39feaff951a900cf7bb8ec823d40cfa8ff36f8"},
      {Algorithm::sha512_256_sess, Qop::auth, SessVariant::hex,
       "4781dc31193fed4eced7798f1e35bccf2438c3def3b717106214f7c7ee15149b"},
      {Algorithm::sha512_256_sess, Qop::auth, SessVariant::raw,
       "9c27f43fe8b0ba244935e32ecd30e74f48e8eb330bbf44a8413e86ed376a0a30"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(std::string(to_string(r.algorithm)) + " qop=" + std::string(to_string(r.qop)) +
                 (r.variant == SessVariant::raw ? " raw" : " hex"));
    const std::string ha1 = compute_ha1(r.algorithm, kUser, kRealm, kPassword);
    EXPECT_EQ(compute_response(input(r.algorithm, r.qop, ha1), r.variant), r.response);
  }
  EXPECT_EQ(compute_ha1(Algorithm::sha512_256, kUser, kRealm, kPassword),
            "9504cbb019b212ad801bc0b0b18ffc7221b8a2092e2d15cd1b769381828f9163");
}

TEST(Digest, EveryAlgorithmAndQopRoundTrips) {
  for (auto a : kAllAlgorithms) {
    for (auto q : kAllQops) {
      SCOPED_TRACE(std::string(to_string(a)) + " qop=" + std::string(to_string(q)));
      // The server's stored HA1 is always the base algorithm's.
      const std::string ha1 = compute_ha1(base_of(a), kUser, kRealm, kPassword);
      EXPECT_EQ(ha1, compute_ha1(a, kUser, kRealm, kPassword));
      const std::string server = compute_response(input(a, q, ha1));
      const std::size_t hex_len = base_of(a) == Algorithm::md5 ? 32 : 64;
      EXPECT_EQ(server.size(), hex_len);
      EXPECT_EQ(server.find_first_not_of("0123456789abcdef"), std::string::npos);

      const std::string client_ha1 = compute_ha1(a, kUser, kRealm, kPassword);
      EXPECT_TRUE(equal_constant_time(server, compute_response(input(a, q, client_ha1))));

      const std::string wrong_ha1 = compute_ha1(a, kUser, kRealm, "s3cret!");
      EXPECT_FALSE(equal_constant_time(server, compute_response(input(a, q, wrong_ha1))));

      // Every input the response covers changes it.
      struct Change {
        const char* what;
        void (*apply)(DigestInput&);
        bool matters;
      };
      const Change changes[] = {
          {"nonce", [](DigestInput& in) { in.nonce = "other"; }, true},
          {"method", [](DigestInput& in) { in.method = "REGISTER"; }, true},
          {"uri", [](DigestInput& in) { in.uri = "sip:bob@lab.example;transport=tcp"; }, true},
          {"nc", [](DigestInput& in) { in.nc = "00000002"; }, q != Qop::none},
          {"cnonce", [](DigestInput& in) { in.cnonce = "other"; }, q != Qop::none || is_sess(a)},
          {"body", [](DigestInput& in) { in.body = "v=1\r\n"; }, q == Qop::auth_int},
      };
      for (const auto& c : changes) {
        SCOPED_TRACE(c.what);
        DigestInput in = input(a, q, ha1);
        c.apply(in);
        EXPECT_EQ(compute_response(in) != server, c.matters);
      }
    }
  }
}

TEST(Digest, SessVariantsDifferAndAreStable) {
  for (auto a : kAllAlgorithms) {
    SCOPED_TRACE(to_string(a));
    const std::string ha1 = compute_ha1(a, kUser, kRealm, kPassword);
    const auto in = input(a, Qop::auth, ha1);
    const std::string hex1 = compute_response(in, SessVariant::hex);
    const std::string raw1 = compute_response(in, SessVariant::raw);
    EXPECT_EQ(hex1, compute_response(in, SessVariant::hex));
    EXPECT_EQ(raw1, compute_response(in, SessVariant::raw));
    EXPECT_EQ(hex1, compute_response(in));  // hex is the default (RFC 7616)
    // The variant only matters for -sess.
    EXPECT_EQ(hex1 != raw1, is_sess(a));
  }
}

TEST(Digest, OddHa1Spellings) {
  const std::string ha1 = compute_ha1(Algorithm::md5, kUser, kRealm, kPassword);
  std::string upper = ha1;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (auto a : {Algorithm::md5, Algorithm::md5_sess}) {
    for (auto v : {SessVariant::hex, SessVariant::raw}) {
      SCOPED_TRACE(std::string(to_string(a)) + (v == SessVariant::raw ? " raw" : " hex"));
      // A config file's upper-case HA1 answers like the lower-case one a phone derives.
      EXPECT_EQ(compute_response(input(a, Qop::auth, upper), v),
                compute_response(input(a, Qop::auth, ha1), v));
    }
  }
  // The raw variant needs real hex; anything else yields no response at all.
  EXPECT_EQ(compute_response(input(Algorithm::md5_sess, Qop::auth, "not-hex"), SessVariant::raw),
            "");
  EXPECT_EQ(compute_response(input(Algorithm::md5_sess, Qop::auth, "abc"), SessVariant::raw), "");
}

TEST(Digest, EqualConstantTime) {
  struct Row {
    std::string_view a, b;
    bool equal;
  };
  const Row rows[] = {
      {"6629fae49393a05397450978507c4ef1", "6629fae49393a05397450978507c4ef1", true},
      {"6629fae49393a05397450978507c4ef1", "6629fae49393a05397450978507c4ef2", false},
      {"6629fae49393a05397450978507c4ef1", "7629fae49393a05397450978507c4ef1", false},
      {"6629fae49393a05397450978507c4ef1", "6629fae49393a05397450978507c4ef", false},
      {"6629fae49393a05397450978507c4ef1", "", false},
      {"", "", false},  // a failed compute must not match an empty response=
      {"a", "a", true},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(std::string(r.a) + " vs " + std::string(r.b));
    EXPECT_EQ(equal_constant_time(r.a, r.b), r.equal);
    EXPECT_EQ(equal_constant_time(r.b, r.a), r.equal);
  }
}

TEST(Digest, Unquote) {
  struct Row {
    std::string_view in, out;
  };
  const Row rows[] = {
      {"plain", "plain"},
      {R"(a\"b)", R"(a"b)"},
      {R"(a\\b)", R"(a\b)"},
      {R"(\a\b)", "ab"},
      {"", ""},
      {R"(trailing\)", R"(trailing\)"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.in);
    EXPECT_EQ(unquote(r.in), r.out);
  }
}

// ---- challenges -------------------------------------------------------------

TEST(Challenge, ParsesRfc7616Example) {
  auto r = parse_challenges(
      "Digest\r\n realm=\"http-auth@example.org\",\r\n qop=\"auth, auth-int\",\r\n "
      "algorithm=SHA-256,\r\n"
      " nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n"
      " opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"");
  ASSERT_TRUE(r) << r.error().detail;
  ASSERT_EQ(r->size(), 1u);
  const Challenge& c = r->front();
  EXPECT_EQ(c.realm, "http-auth@example.org");
  EXPECT_EQ(c.nonce, "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v");
  EXPECT_EQ(c.opaque, "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS");
  EXPECT_EQ(c.algorithm, Algorithm::sha256);
  EXPECT_TRUE(c.algorithm_given);
  EXPECT_EQ(c.qops, (std::vector<Qop>{Qop::auth, Qop::auth_int}));
  EXPECT_FALSE(c.stale);
  EXPECT_FALSE(c.userhash);
  EXPECT_TRUE(c.other.empty());
}

TEST(Challenge, SeveralInOneValueKeepOrder) {
  struct Row {
    const char* name;
    std::string_view value;
    std::vector<std::pair<std::string, Algorithm>> nonces;  // nonce, algorithm
  };
  const Row rows[] = {
      {"two digests",
       R"(Digest realm="a", nonce="1", algorithm=SHA-256, Digest realm="a", nonce="2", algorithm=MD5)",
       {{"1", Algorithm::sha256}, {"2", Algorithm::md5}}},
      {"RFC 8760 order, three",
       R"(Digest realm="a", nonce="1", algorithm=SHA-512-256, Digest realm="a", nonce="2", algorithm=SHA-256,)"
       R"( Digest realm="a", nonce="3")",
       {{"1", Algorithm::sha512_256}, {"2", Algorithm::sha256}, {"3", Algorithm::md5}}},
      {"Basic between",
       R"(Digest realm="a", nonce="1", algorithm=SHA-256, Basic realm="x", Digest realm="a", nonce="2")",
       {{"1", Algorithm::sha256}, {"2", Algorithm::md5}}},
      {"RFC 7235 Newauth with escapes, first",
       R"(Newauth realm="apps", type=1, title="Login to \"apps\"", Digest realm="a", nonce="1", Basic realm="simple")",
       {{"1", Algorithm::md5}}},
      {"token68 scheme",
       "Negotiate YIIGhgYJKoZIhvcSAQICAQBuggZ1MIIGcaADAgEF+/9==, Digest realm=\"a\", nonce=\"1\"",
       {{"1", Algorithm::md5}}},
      {"bare scheme",
       "Negotiate, Digest realm=\"a\", nonce=\"1\", algorithm=md5-sess",
       {{"1", Algorithm::md5_sess}}},
      {"empty list elements", ", Digest realm=\"a\",, nonce=\"1\" ,", {{"1", Algorithm::md5}}},
      {"unquoted values", "Digest realm=a, nonce=1, algorithm=SHA-256", {{"1", Algorithm::sha256}}},
      {"only other schemes", R"(Basic realm="x", Bearer realm="y")", {}},
      {"empty", "", {}},
      // RFC 7616 3.3: a client ignores a challenge whose algorithm it does not know.
      {"unknown algorithm skipped",
       R"(Digest realm="ims", nonce="0", algorithm=AKAv1-MD5, Digest realm="a", nonce="1")",
       {{"1", Algorithm::md5}}},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    auto parsed = parse_challenges(r.value);
    ASSERT_TRUE(parsed) << parsed.error().detail;
    ASSERT_EQ(parsed->size(), r.nonces.size());
    for (std::size_t i = 0; i < r.nonces.size(); ++i) {
      EXPECT_EQ((*parsed)[i].nonce, r.nonces[i].first);
      EXPECT_EQ((*parsed)[i].algorithm, r.nonces[i].second);
    }
  }
}

TEST(Challenge, Flags) {
  struct Row {
    std::string_view value;
    bool stale, userhash;
    std::vector<Qop> qops;
  };
  const Row rows[] = {
      {R"(Digest realm="a", nonce="1", stale=true)", true, false, {}},
      {R"(Digest realm="a", nonce="1", stale=TRUE)", true, false, {}},
      {R"(Digest realm="a", nonce="1", stale="true")", true, false, {}},
      {R"(Digest realm="a", nonce="1", stale=false)", false, false, {}},
      {R"(Digest realm="a", nonce="1", userhash=true)", false, true, {}},
      {R"(Digest realm="a", nonce="1", qop="auth-int,auth")",
       false,
       false,
       {Qop::auth_int, Qop::auth}},
      {R"(Digest realm="a", nonce="1", qop=auth)", false, false, {Qop::auth}},
      // Unknown qop tokens are ignored, duplicates folded.
      {R"(Digest realm="a", nonce="1", qop="auth-conf, auth,auth")", false, false, {Qop::auth}},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.value);
    auto parsed = parse_challenges(r.value);
    ASSERT_TRUE(parsed) << parsed.error().detail;
    ASSERT_EQ(parsed->size(), 1u);
    EXPECT_EQ(parsed->front().stale, r.stale);
    EXPECT_EQ(parsed->front().userhash, r.userhash);
    EXPECT_EQ(parsed->front().qops, r.qops);
    EXPECT_FALSE(parsed->front().algorithm_given);
  }
}

TEST(Challenge, UnknownParametersKept) {
  auto r =
      parse_challenges(R"(Digest realm="a\"b", domain="sip:x sip:y", nonce="1", charset=UTF-8)");
  ASSERT_TRUE(r) << r.error().detail;
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(r->front().realm, "a\"b");
  using Other = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(r->front().other, (Other{{"domain", "sip:x sip:y"}, {"charset", "UTF-8"}}));
}

TEST(Challenge, MalformedRejected) {
  const std::string big(5000, 'x');
  struct Row {
    const char* name;
    std::string value;
    Errc code;
    std::string_view reason;  // a word the detail must contain
  };
  const Row rows[] = {
      {"unterminated quote", R"(Digest realm="a", nonce="1)", Errc::bad_header, "unterminated"},
      {"quote ends in an escape", R"(Digest realm="a", nonce="1\")", Errc::bad_header,
       "unterminated"},
      {"no realm", R"(Digest nonce="1")", Errc::missing_header, "realm"},
      {"no nonce", R"(Digest realm="a")", Errc::missing_header, "nonce"},
      {"second digest incomplete", R"(Digest realm="a", nonce="1", Digest realm="b")",
       Errc::missing_header, "nonce"},
      {"parameter before scheme", R"(realm="a", Digest realm="a", nonce="1")", Errc::bad_header,
       "scheme"},
      {"repeated parameter", R"(Digest realm="a", nonce="1", nonce="2")", Errc::duplicate_header,
       "repeated"},
      {"missing comma", R"(Digest realm="a" nonce="1")", Errc::bad_header, "','"},
      {"empty value", R"(Digest realm=, nonce="1")", Errc::bad_header, "value"},
      {"stray character", R"(Digest realm="a", nonce="1", @)", Errc::bad_header, "unexpected"},
      {"oversized value", "Digest realm=\"a\", nonce=\"" + big + "\"", Errc::bad_value, "limit"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    auto parsed = parse_challenges(r.value);
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().code, r.code);
    EXPECT_NE(parsed.error().detail.find(r.reason), std::string_view::npos)
        << parsed.error().detail;
  }
}

TEST(Challenge, FormatExact) {
  Challenge c;
  c.realm = "lab.example";
  c.nonce = "abc";
  c.opaque = "op";
  c.algorithm = Algorithm::sha256;
  c.algorithm_given = true;
  c.qops = {Qop::auth, Qop::auth_int};
  c.stale = true;
  EXPECT_EQ(
      format_challenge(c),
      R"(Digest realm="lab.example", nonce="abc", opaque="op", algorithm=SHA-256, qop="auth,auth-int", stale=true)");
  Challenge plain;
  plain.realm = "r";
  plain.nonce = "n";
  EXPECT_EQ(format_challenge(plain), R"(Digest realm="r", nonce="n")");
  Challenge quoted;
  quoted.realm = R"(a"b\c)";
  quoted.nonce = "n";
  EXPECT_EQ(format_challenge(quoted), R"(Digest realm="a\"b\\c", nonce="n")");
}

TEST(Challenge, FormatParseRoundTrip) {
  std::vector<Challenge> rows;
  {
    Challenge c;
    c.realm = "lab.example";
    c.nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    rows.push_back(c);
    c.algorithm = Algorithm::sha512_256_sess;
    c.algorithm_given = true;
    c.qops = {Qop::auth};
    c.opaque = "FQhe";
    rows.push_back(c);
    c.realm = R"(we "quote" and \escape)";
    c.stale = true;
    c.userhash = true;
    c.qops = {Qop::auth_int, Qop::auth};
    c.other = {{"domain", "sip:lab.example"}, {"charset", "UTF-8"}};
    rows.push_back(c);
    c.algorithm = Algorithm::md5;  // explicitly given, so formatted though default
    rows.push_back(c);
  }
  for (const auto& c : rows) {
    const std::string text = format_challenge(c);
    SCOPED_TRACE(text);
    auto parsed = parse_challenges(text);
    ASSERT_TRUE(parsed) << parsed.error().detail;
    ASSERT_EQ(parsed->size(), 1u);
    const Challenge& back = parsed->front();
    EXPECT_EQ(back.realm, c.realm);
    EXPECT_EQ(back.nonce, c.nonce);
    EXPECT_EQ(back.opaque, c.opaque);
    EXPECT_EQ(back.algorithm, c.algorithm);
    EXPECT_EQ(back.algorithm_given, c.algorithm_given);
    EXPECT_EQ(back.qops, c.qops);
    EXPECT_EQ(back.stale, c.stale);
    EXPECT_EQ(back.userhash, c.userhash);
    EXPECT_EQ(back.other, c.other);
  }
  // Several formatted challenges joined with ", " (as one header) come back in order.
  std::string joined;
  for (const auto& c : rows) joined += (joined.empty() ? "" : ", ") + format_challenge(c);
  auto all = parse_challenges(joined);
  ASSERT_TRUE(all) << all.error().detail;
  ASSERT_EQ(all->size(), rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) EXPECT_EQ((*all)[i].algorithm, rows[i].algorithm);
}

// ---- credentials ------------------------------------------------------------

constexpr std::string_view kRfc7616Authorization =
    "Digest username=\"Mufasa\",\r\n realm=\"http-auth@example.org\",\r\n "
    "uri=\"/dir/index.html\",\r\n"
    " algorithm=SHA-256,\r\n nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n "
    "nc=00000001,\r\n"
    " cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\",\r\n qop=auth,\r\n"
    " response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\",\r\n"
    " opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";

TEST(Credentials, ParsesAndVerifiesRfc7616Example) {
  auto r = parse_credentials(kRfc7616Authorization);
  ASSERT_TRUE(r) << r.error().detail;
  const Credentials& c = *r;
  EXPECT_EQ(c.username, "Mufasa");
  EXPECT_EQ(c.realm, "http-auth@example.org");
  EXPECT_EQ(c.uri, "/dir/index.html");
  EXPECT_EQ(c.algorithm, Algorithm::sha256);
  EXPECT_EQ(c.algorithm_text, "SHA-256");
  EXPECT_EQ(c.nonce, "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v");
  EXPECT_EQ(c.nc, "00000001");
  EXPECT_EQ(c.cnonce, "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ");
  EXPECT_EQ(c.qop, Qop::auth);
  EXPECT_EQ(c.opaque, "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS");
  EXPECT_FALSE(c.userhash);

  // What a verifier does with them.
  const std::string ha1 =
      compute_ha1(*c.algorithm, "Mufasa", "http-auth@example.org", "Circle of Life");
  DigestInput in;
  in.algorithm = *c.algorithm;
  in.ha1 = ha1;
  in.nonce = c.nonce;
  in.cnonce = c.cnonce;
  in.nc = c.nc;
  in.qop = c.qop;
  in.method = "GET";
  in.uri = c.uri;
  EXPECT_TRUE(equal_constant_time(compute_response(in), c.response));
  const std::string wrong =
      compute_ha1(*c.algorithm, "Mufasa", "http-auth@example.org", "Circle Of Life");
  in.ha1 = wrong;
  EXPECT_FALSE(equal_constant_time(compute_response(in), c.response));
}

TEST(Credentials, Accepted) {
  struct Row {
    const char* name;
    std::string_view value;
    std::optional<Algorithm> algorithm;
    Qop qop;
    bool userhash;
    std::string_view username;
  };
  const Row rows[] = {
      {"RFC 2069 form, no qop, no algorithm",
       R"(Digest username="1001", realm="pbx", nonce="n", uri="sip:pbx", response="0123456789abcdef0123456789abcdef")",
       std::nullopt, Qop::none, false, "1001"},
      {"lower-case scheme, auth-int, MD5-sess",
       R"(digest username="1001", realm="pbx", nonce="n", uri="sip:pbx", response="ab", algorithm=md5-sess, qop=auth-int, nc=0000000A, cnonce="c")",
       Algorithm::md5_sess, Qop::auth_int, false, "1001"},
      {"qop quoted by a lenient client",
       R"(Digest username="1001", realm="pbx", nonce="n", uri="sip:pbx", response="ab", qop="auth", nc=00000001, cnonce="c")",
       std::nullopt, Qop::auth, false, "1001"},
      {"userhash",
       R"(Digest username="5a1a8a47df5c298551b9b42ba9b05835174a5bd7d511ff7fe9191d8e946fc4e7", realm="r", nonce="n", uri="/", response="ab", userhash=true)",
       std::nullopt, Qop::none, true,
       "5a1a8a47df5c298551b9b42ba9b05835174a5bd7d511ff7fe9191d8e946fc4e7"},
      {"escapes kept in the view",
       R"(Digest username="a\"b", realm="r", nonce="n", uri="/", response="ab")", std::nullopt,
       Qop::none, false, R"(a\"b)"},
      {"unknown parameters ignored",
       R"(Digest username="u", realm="", nonce="n", uri="/", response="ab", charset=UTF-8, x-vendor="y")",
       std::nullopt, Qop::none, false, "u"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    auto c = parse_credentials(r.value);
    ASSERT_TRUE(c) << c.error().detail;
    EXPECT_EQ(c->algorithm, r.algorithm);
    EXPECT_EQ(c->qop, r.qop);
    EXPECT_EQ(c->userhash, r.userhash);
    EXPECT_EQ(c->username, r.username);
  }
}

TEST(Credentials, MalformedRejectedWithReason) {
  const std::string big(10 * 1024, 'a');
  constexpr std::string_view ok_tail = R"(, realm="r", nonce="n", uri="/", response="ab")";
  struct Row {
    const char* name;
    std::string value;
    Errc code;
    std::string_view reason;  // a word the detail must contain
  };
  const Row rows[] = {
      {"missing username", R"(Digest realm="r", nonce="n", uri="/", response="ab")",
       Errc::missing_header, "username"},
      {"missing realm", R"(Digest username="u", nonce="n", uri="/", response="ab")",
       Errc::missing_header, "realm"},
      {"missing nonce", R"(Digest username="u", realm="r", uri="/", response="ab")",
       Errc::missing_header, "nonce"},
      {"empty nonce", R"(Digest username="u", realm="r", nonce="", uri="/", response="ab")",
       Errc::missing_header, "nonce"},
      {"missing uri", R"(Digest username="u", realm="r", nonce="n", response="ab")",
       Errc::missing_header, "uri"},
      {"missing response", R"(Digest username="u", realm="r", nonce="n", uri="/")",
       Errc::missing_header, "response"},
      {"qop without nc",
       std::string(R"(Digest username="u")") + std::string(ok_tail) + R"(, qop=auth, cnonce="c")",
       Errc::missing_header, "nc"},
      {"qop without cnonce",
       std::string(R"(Digest username="u")") + std::string(ok_tail) + ", qop=auth, nc=00000001",
       Errc::missing_header, "cnonce"},
      {"qop with empty cnonce",
       std::string(R"(Digest username="u")") + std::string(ok_tail) +
           R"(, qop=auth, nc=00000001, cnonce="")",
       Errc::missing_header, "cnonce"},
      {"nc too short",
       std::string(R"(Digest username="u")") + std::string(ok_tail) +
           R"(, qop=auth, nc=1, cnonce="c")",
       Errc::bad_value, "nc"},
      {"nc too long",
       std::string(R"(Digest username="u")") + std::string(ok_tail) +
           R"(, qop=auth, nc=000000001, cnonce="c")",
       Errc::bad_value, "nc"},
      {"nc not hex",
       std::string(R"(Digest username="u")") + std::string(ok_tail) +
           R"(, qop=auth, nc=0000000g, cnonce="c")",
       Errc::bad_value, "nc"},
      {"unknown qop",
       std::string(R"(Digest username="u")") + std::string(ok_tail) +
           R"(, qop=auth-conf, nc=00000001, cnonce="c")",
       Errc::bad_value, "qop"},
      {"qop list instead of one",
       std::string(R"(Digest username="u")") + std::string(ok_tail) +
           R"(, qop="auth,auth-int", nc=00000001, cnonce="c")",
       Errc::bad_value, "qop"},
      {"-sess without cnonce",
       std::string(R"(Digest username="u")") + std::string(ok_tail) + ", algorithm=MD5-sess",
       Errc::missing_header, "cnonce"},
      {"duplicate field",
       std::string(R"(Digest username="u", username="v")") + std::string(ok_tail),
       Errc::duplicate_header, "repeated"},
      {"unterminated quote", R"(Digest username="u", realm="r", nonce="n", uri="/", response="ab)",
       Errc::bad_header, "unterminated"},
      {"10 KB value", "Digest username=\"" + big + "\"" + std::string(ok_tail), Errc::bad_value,
       "limit"},
      {"unknown algorithm",
       std::string(R"(Digest username="u")") + std::string(ok_tail) + ", algorithm=SHA3-256",
       Errc::bad_value, "algorithm"},
      {"Basic scheme", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", Errc::bad_header, "Digest"},
      {"Basic with params", std::string(R"(Basic username="u")") + std::string(ok_tail),
       Errc::bad_header, "Digest"},
      {"empty", "", Errc::bad_header, "scheme"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    auto c = parse_credentials(r.value);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, r.code);
    EXPECT_FALSE(c.error().detail.empty());
    EXPECT_NE(c.error().detail.find(r.reason), std::string_view::npos) << c.error().detail;
  }
}

TEST(Credentials, LimitsAreTheCallers) {
  const std::string value = R"(Digest username="u", realm="r", nonce="n", uri="/", response="ab")";
  EXPECT_TRUE(parse_credentials(value));
  AuthLimits tight;
  tight.max_params = 4;
  auto r = parse_credentials(value, tight);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::bad_value);
}

}  // namespace
}  // namespace sw::auth
