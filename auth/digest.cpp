#include "digest.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/md5.h>

#include <array>
#include <initializer_list>

#include "proxy/sip/text.hpp"

namespace sw::auth {

namespace {

// The three hash functions behind the six algorithm names.
enum class Hash : std::uint8_t { md5, sha256, sha512_256 };
constexpr std::size_t kMaxDigestBytes = 32;  // SHA-256 and SHA-512/256; MD5 is 16
constexpr std::size_t kMaxHexBytes = 2 * kMaxDigestBytes;

Hash hash_of(Algorithm a) {
  switch (a) {
    case Algorithm::md5:
    case Algorithm::md5_sess:
      return Hash::md5;
    case Algorithm::sha256:
    case Algorithm::sha256_sess:
      return Hash::sha256;
    case Algorithm::sha512_256:
    case Algorithm::sha512_256_sess:
      return Hash::sha512_256;
  }
  return Hash::md5;
}

// The SHA-2 hashes (MD5 goes through hash_md5 below), fetched once and kept for
// the life of the process: with OpenSSL 3 an EVP_sha256()-style legacy handle
// makes every EVP_DigestInit do an implicit provider fetch, which costs more
// than hashing a SIP-sized input. "SHA2-512/256" is the real SHA-512/256 (its
// own initial values), which is what RFC 7616 and Kamailio/OpenSIPS mean by
// SHA-512-256, not a truncated SHA-512.
const EVP_MD* message_digest(Hash h) {
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  static EVP_MD* const sha512_256 = EVP_MD_fetch(nullptr, "SHA2-512/256", nullptr);
  return h == Hash::sha256 ? sha256 : sha512_256;
}

// One reusable context per thread (EVP_DigestInit_ex2 sets its hash each
// time): EVP_MD_CTX_new/free per call would be an allocation pair on every
// verify, and a context is not thread-safe.
EVP_MD_CTX* thread_context() {
  struct Context {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    Context() = default;
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;
    ~Context() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Context context;
  return context.ctx;
}

// MD5 through OpenSSL's direct MD5_* functions, deprecated in OpenSSL 3 but
// kept in its libcrypto: EVP's provider dispatch weighs on a digest
// response's short inputs (bench_auth BM_Verify/0, alternating runs: 576-829
// ns a verify through EVP, 487-614 ns this way). The SHA-2 hashes stay on
// EVP, where a SHA-256 verify already costs no more than an MD5 one.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
std::size_t hash_md5(std::initializer_list<std::string_view> parts, unsigned char* out) {
  MD5_CTX ctx;
  if (MD5_Init(&ctx) != 1) return 0;
  for (auto p : parts)
    if (MD5_Update(&ctx, p.data(), p.size()) != 1) return 0;
  if (MD5_Final(out, &ctx) != 1) return 0;
  return MD5_DIGEST_LENGTH;
}
#pragma GCC diagnostic pop

// Hashes the concatenation of parts into out (kMaxDigestBytes room) without
// building the concatenated string. Returns the digest length, 0 on failure.
std::size_t hash_parts(Hash h, std::initializer_list<std::string_view> parts, unsigned char* out) {
  if (h == Hash::md5) return hash_md5(parts, out);
  const EVP_MD* md = message_digest(h);
  EVP_MD_CTX* ctx = thread_context();
  if (md == nullptr || ctx == nullptr) return 0;
  if (EVP_DigestInit_ex2(ctx, md, nullptr) != 1) return 0;
  for (auto p : parts)
    if (!p.empty() && EVP_DigestUpdate(ctx, p.data(), p.size()) != 1) return 0;
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx, out, &len) != 1) return 0;
  return len;
}

constexpr char kHexDigits[] = "0123456789abcdef";

// Writes 2*n lower-case hex characters to out.
void to_hex(const unsigned char* in, std::size_t n, char* out) {
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kHexDigits[in[i] >> 4];
    out[2 * i + 1] = kHexDigits[in[i] & 0x0f];
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_hex(std::string_view s) {
  for (char c : s)
    if (hex_value(c) < 0) return false;
  return true;
}

// Hex-of-hash in a stack buffer: the intermediate HA1'/HA2 values never need
// to outlive compute_response, so they never touch the heap.
struct HexDigest {
  std::array<char, kMaxHexBytes> text{};
  std::size_t size = 0;
  std::string_view view() const { return {text.data(), size}; }
};

HexDigest hash_parts_hex(Hash h, std::initializer_list<std::string_view> parts) {
  std::array<unsigned char, kMaxDigestBytes> raw{};
  HexDigest out;
  std::size_t n = hash_parts(h, parts, raw.data());
  to_hex(raw.data(), n, out.text.data());
  out.size = 2 * n;
  return out;
}

}  // namespace

std::optional<Algorithm> parse_algorithm(std::string_view name) {
  static constexpr std::array<Algorithm, 6> all = {
      Algorithm::md5,         Algorithm::md5_sess,   Algorithm::sha256,
      Algorithm::sha256_sess, Algorithm::sha512_256, Algorithm::sha512_256_sess};
  for (auto a : all)
    if (sip::iequals(name, to_string(a))) return a;
  return std::nullopt;
}

std::string_view to_string(Algorithm a) {
  switch (a) {
    case Algorithm::md5:
      return "MD5";
    case Algorithm::md5_sess:
      return "MD5-sess";
    case Algorithm::sha256:
      return "SHA-256";
    case Algorithm::sha256_sess:
      return "SHA-256-sess";
    case Algorithm::sha512_256:
      return "SHA-512-256";
    case Algorithm::sha512_256_sess:
      return "SHA-512-256-sess";
  }
  return "MD5";
}

bool is_sess(Algorithm a) {
  return a == Algorithm::md5_sess || a == Algorithm::sha256_sess || a == Algorithm::sha512_256_sess;
}

Algorithm base_of(Algorithm a) {
  switch (hash_of(a)) {
    case Hash::md5:
      return Algorithm::md5;
    case Hash::sha256:
      return Algorithm::sha256;
    case Hash::sha512_256:
      return Algorithm::sha512_256;
  }
  return Algorithm::md5;
}

std::optional<Qop> parse_qop(std::string_view token) {
  if (sip::iequals(token, "auth")) return Qop::auth;
  if (sip::iequals(token, "auth-int")) return Qop::auth_int;
  return std::nullopt;
}

std::string_view to_string(Qop q) {
  switch (q) {
    case Qop::none:
      return "";
    case Qop::auth:
      return "auth";
    case Qop::auth_int:
      return "auth-int";
  }
  return "";
}

std::string hash_hex(Algorithm a, std::string_view data) {
  return std::string(hash_parts_hex(hash_of(a), {data}).view());
}

std::string compute_ha1(Algorithm a, std::string_view username, std::string_view realm,
                        std::string_view password) {
  return std::string(hash_parts_hex(hash_of(a), {username, ":", realm, ":", password}).view());
}

std::string compute_response(const DigestInput& in, SessVariant variant) {
  const Hash h = hash_of(in.algorithm);

  // HA1 from a config file may be upper-case hex; the digest is defined over
  // the lower-case form (RFC 7616 3.4.1), which is what a client derives from
  // the password.
  std::array<char, 2 * kMaxHexBytes> ha1_lower{};
  std::string_view ha1 = in.ha1;
  if (ha1.size() <= ha1_lower.size()) {
    for (std::size_t i = 0; i < ha1.size(); ++i) ha1_lower[i] = sip::ascii_lower(ha1[i]);
    ha1 = {ha1_lower.data(), ha1.size()};
  }

  HexDigest sess;
  if (is_sess(in.algorithm)) {
    if (variant == SessVariant::hex) {
      // RFC 7616 3.4.2: H(H(user:realm:pass) ":" nonce ":" cnonce), HA1 in hex.
      sess = hash_parts_hex(h, {ha1, ":", in.nonce, ":", in.cnonce});
    } else {
      // The RFC 2617 3.2.2.2 reading some stacks follow: the raw HA1 bytes.
      if (ha1.size() % 2 != 0 || ha1.size() > kMaxHexBytes || !is_hex(ha1)) return {};
      std::array<char, kMaxDigestBytes> raw{};
      for (std::size_t i = 0; i < ha1.size() / 2; ++i)
        raw[i] = static_cast<char>(hex_value(ha1[2 * i]) << 4 | hex_value(ha1[2 * i + 1]));
      sess = hash_parts_hex(
          h, {std::string_view(raw.data(), ha1.size() / 2), ":", in.nonce, ":", in.cnonce});
    }
    if (sess.size == 0) return {};
    ha1 = sess.view();
  }

  HexDigest ha2;
  if (in.qop == Qop::auth_int) {
    HexDigest body = hash_parts_hex(h, {in.body});
    if (body.size == 0) return {};
    ha2 = hash_parts_hex(h, {in.method, ":", in.uri, ":", body.view()});
  } else {
    ha2 = hash_parts_hex(h, {in.method, ":", in.uri});
  }
  if (ha2.size == 0) return {};

  HexDigest response;
  if (in.qop == Qop::none) {
    // RFC 2069 form, still what many SIP servers challenge with.
    response = hash_parts_hex(h, {ha1, ":", in.nonce, ":", ha2.view()});
  } else {
    response = hash_parts_hex(h, {ha1, ":", in.nonce, ":", in.nc, ":", in.cnonce, ":",
                                  to_string(in.qop), ":", ha2.view()});
  }
  return std::string(response.view());
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  // Empty never matches: compute_response returns "" when hashing fails, and
  // that must not equal an empty response= from the wire.
  if (a.empty() || b.empty() || a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string unquote(std::string_view quoted_content) {
  std::string out;
  out.reserve(quoted_content.size());
  for (std::size_t i = 0; i < quoted_content.size(); ++i) {
    char c = quoted_content[i];
    if (c == '\\' && i + 1 < quoted_content.size()) c = quoted_content[++i];
    out.push_back(c);
  }
  return out;
}

// ---- challenges -------------------------------------------------------------

namespace {

// token68 (RFC 7235 2.1): the opaque blob some schemes (Basic, Negotiate) carry
// instead of auth-params.
bool is_token68_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

std::string escape_quoted(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

class ChallengeScanner {
 public:
  explicit ChallengeScanner(std::string_view v) : v_(v) {}

  Result<std::vector<Challenge>> run() {
    skip_ws();
    while (i_ < v_.size()) {
      if (v_[i_] == ',') {  // list separator (empty elements are allowed, RFC 7230 7)
        ++i_;
        need_comma_ = false;
        skip_ws();
        continue;
      }
      if (need_comma_) return Error{Errc::bad_header, "expected ',' between auth parameters"};
      std::string_view name = read_token();
      if (name.empty()) return Error{Errc::bad_header, "unexpected character in challenge"};
      skip_ws();
      if (i_ < v_.size() && v_[i_] == '=') {
        if (!in_scheme_) return Error{Errc::bad_header, "auth parameter before any scheme"};
        ++i_;
        skip_ws();
        auto value = read_value();
        if (!value) return value.error();
        if (digest_) {
          if (auto err = apply(name, value->first, value->second)) return *err;
        }
        need_comma_ = true;
      } else {
        // A token not followed by '=' starts a new challenge (RFC 7235 4.1:
        // challenges and their parameters share one comma list).
        if (auto err = finish()) return *err;
        start(name);
      }
      skip_ws();
    }
    if (auto err = finish()) return *err;
    return std::move(out_);
  }

 private:
  void skip_ws() {
    while (i_ < v_.size() && sip::is_ws(v_[i_])) ++i_;
  }

  std::string_view read_token() {
    std::size_t start = i_;
    while (i_ < v_.size() && sip::is_token_char(v_[i_])) ++i_;
    return v_.substr(start, i_ - start);
  }

  // A quoted string (content returned with escapes) or a bare value.
  Result<std::pair<std::string_view, bool>> read_value() {
    if (i_ < v_.size() && v_[i_] == '"') {
      std::size_t start = ++i_;
      while (i_ < v_.size() && v_[i_] != '"') {
        if (v_[i_] == '\\') ++i_;
        ++i_;
      }
      if (i_ >= v_.size()) return Error{Errc::bad_header, "unterminated quoted auth parameter"};
      auto content = v_.substr(start, i_ - start);
      ++i_;
      if (content.size() > limits_.max_value_bytes)
        return Error{Errc::bad_value, "auth parameter value over limit"};
      return std::pair{content, true};
    }
    std::size_t start = i_;
    while (i_ < v_.size() && v_[i_] != ',' && !sip::is_ws(v_[i_])) ++i_;
    auto bare = v_.substr(start, i_ - start);
    if (bare.empty()) return Error{Errc::bad_header, "auth parameter without a value"};
    if (bare.size() > limits_.max_value_bytes)
      return Error{Errc::bad_value, "auth parameter value over limit"};
    return std::pair{bare, false};
  }

  void start(std::string_view scheme) {
    in_scheme_ = true;
    digest_ = sip::iequals(scheme, "Digest");
    current_ = Challenge{};
    seen_.clear();
    usable_ = true;
    has_realm_ = has_nonce_ = false;
    if (digest_) return;  // Digest carries auth-params only (RFC 7616 3.3)
    // "Basic <token68>" / "Negotiate <token68>": skip the blob so that it is
    // not read as a parameter name. It ends at ',' or the end, and is never
    // followed by '=' plus a value.
    std::size_t j = i_;
    while (j < v_.size() && is_token68_char(v_[j])) ++j;
    if (j == i_) return;
    while (j < v_.size() && v_[j] == '=') ++j;
    std::size_t k = j;
    while (k < v_.size() && sip::is_ws(v_[k])) ++k;
    if (k < v_.size() && v_[k] != ',') return;  // "realm=x": a parameter after all
    i_ = k;
  }

  // Applies one parameter of a Digest challenge.
  std::optional<Error> apply(std::string_view name, std::string_view value, bool quoted) {
    for (auto seen : seen_)
      if (sip::iequals(seen, name)) return Error{Errc::duplicate_header, "auth parameter repeated"};
    if (seen_.size() >= limits_.max_params)
      return Error{Errc::bad_value, "too many auth parameters"};
    seen_.push_back(name);
    std::string text = quoted ? unquote(value) : std::string(value);
    if (sip::iequals(name, "realm")) {
      current_.realm = std::move(text);
      has_realm_ = true;
    } else if (sip::iequals(name, "nonce")) {
      current_.nonce = std::move(text);
      has_nonce_ = true;
    } else if (sip::iequals(name, "opaque")) {
      current_.opaque = std::move(text);
    } else if (sip::iequals(name, "algorithm")) {
      auto a = parse_algorithm(text);
      // RFC 7616 3.3: a challenge with an algorithm the client does not know
      // is ignored, so it is skipped here too (AKAv1-MD5 and the like).
      if (!a)
        usable_ = false;
      else
        current_.algorithm = *a;
      current_.algorithm_given = true;
    } else if (sip::iequals(name, "qop")) {
      // A quoted list ("auth,auth-int"); unknown tokens are ignored (RFC 7616 3.3).
      bool balanced = sip::for_each_list_item(text, [&](std::string_view item) {
        if (auto q = parse_qop(item)) {
          bool dup = false;
          for (auto have : current_.qops) dup = dup || have == *q;
          if (!dup) current_.qops.push_back(*q);
        }
        return true;
      });
      if (!balanced) return Error{Errc::bad_header, "malformed qop list"};
    } else if (sip::iequals(name, "stale")) {
      current_.stale = sip::iequals(text, "true");
    } else if (sip::iequals(name, "userhash")) {
      current_.userhash = sip::iequals(text, "true");
    } else {
      current_.other.emplace_back(std::string(name), std::move(text));
    }
    return std::nullopt;
  }

  std::optional<Error> finish() {
    if (!in_scheme_ || !digest_) return std::nullopt;
    in_scheme_ = false;
    if (!usable_) return std::nullopt;
    if (!has_realm_) return Error{Errc::missing_header, "digest challenge without realm"};
    if (!has_nonce_) return Error{Errc::missing_header, "digest challenge without nonce"};
    out_.push_back(std::move(current_));
    return std::nullopt;
  }

  std::string_view v_;
  std::size_t i_ = 0;
  AuthLimits limits_;
  bool need_comma_ = false;
  bool in_scheme_ = false;
  bool digest_ = false;
  bool usable_ = true;
  bool has_realm_ = false, has_nonce_ = false;
  Challenge current_;
  std::vector<std::string_view> seen_;
  std::vector<Challenge> out_;
};

}  // namespace

Result<std::vector<Challenge>> parse_challenges(std::string_view value) {
  return ChallengeScanner(value).run();
}

std::string format_challenge(const Challenge& c) {
  std::string out = "Digest realm=\"";
  out += escape_quoted(c.realm);
  out += "\", nonce=\"";
  out += escape_quoted(c.nonce);
  out += '"';
  if (!c.opaque.empty()) {
    out += ", opaque=\"";
    out += escape_quoted(c.opaque);
    out += '"';
  }
  // Omitted when never set, so a parsed RFC 2069-style challenge formats back as it came.
  if (c.algorithm_given || c.algorithm != Algorithm::md5) {
    out += ", algorithm=";
    out += to_string(c.algorithm);
  }
  if (!c.qops.empty()) {
    out += ", qop=\"";
    for (std::size_t i = 0; i < c.qops.size(); ++i) {
      if (i > 0) out += ',';
      out += to_string(c.qops[i]);
    }
    out += '"';
  }
  if (c.stale) out += ", stale=true";
  if (c.userhash) out += ", userhash=true";
  for (const auto& [name, value] : c.other) {
    out += ", ";
    out += name;
    out += "=\"";
    out += escape_quoted(value);
    out += '"';
  }
  return out;
}

// ---- credentials ------------------------------------------------------------

Result<Credentials> parse_credentials(std::string_view value, const AuthLimits& limits) {
  // The scheme first: "Basic <token68>" is not an auth-param list, and the
  // useful reason is the scheme, not its syntax.
  const std::string_view trimmed = sip::trim(value);
  std::size_t scheme_end = 0;
  while (scheme_end < trimmed.size() && sip::is_token_char(trimmed[scheme_end])) ++scheme_end;
  if (scheme_end == 0) return Error{Errc::bad_header, "authentication scheme missing"};
  if (!sip::iequals(trimmed.substr(0, scheme_end), "Digest"))
    return Error{Errc::bad_header, "credentials scheme is not Digest"};

  auto parsed = parse_auth_header(value, limits);
  if (!parsed) return parsed.error();
  const AuthHeader& h = *parsed;

  Credentials c;
  auto username = h.get("username");
  if (!username) return Error{Errc::missing_header, "credentials without username"};
  auto realm = h.get("realm");
  if (!realm) return Error{Errc::missing_header, "credentials without realm"};
  auto nonce = h.get("nonce");
  if (!nonce || nonce->empty()) return Error{Errc::missing_header, "credentials without nonce"};
  auto uri = h.get("uri");
  if (!uri || uri->empty()) return Error{Errc::missing_header, "credentials without uri"};
  auto response = h.get("response");
  if (!response || response->empty())
    return Error{Errc::missing_header, "credentials without response"};
  c.username = *username;
  c.realm = *realm;
  c.nonce = *nonce;
  c.uri = *uri;
  c.response = *response;
  c.opaque = h.get("opaque").value_or(std::string_view{});
  c.cnonce = h.get("cnonce").value_or(std::string_view{});
  c.nc = h.get("nc").value_or(std::string_view{});

  if (auto alg = h.get("algorithm")) {
    c.algorithm_text = *alg;
    c.algorithm = parse_algorithm(*alg);
    if (!c.algorithm) return Error{Errc::bad_value, "unknown digest algorithm"};
  }

  if (auto qop = h.get("qop")) {
    auto q = parse_qop(*qop);
    if (!q) return Error{Errc::bad_value, "qop is neither auth nor auth-int"};
    c.qop = *q;
    // RFC 7616 3.4: with qop, nc and cnonce MUST be sent.
    if (c.nc.empty()) return Error{Errc::missing_header, "qop without nc"};
    if (c.nc.size() != 8 || !is_hex(c.nc)) return Error{Errc::bad_value, "nc is not 8 hex digits"};
    if (c.cnonce.empty()) return Error{Errc::missing_header, "qop without cnonce"};
  }
  // RFC 2617 3.2.2.2: the -sess HA1 folds in the cnonce, with or without qop.
  if (c.algorithm && is_sess(*c.algorithm) && c.cnonce.empty())
    return Error{Errc::missing_header, "-sess algorithm without cnonce"};

  if (auto uh = h.get("userhash")) c.userhash = sip::iequals(*uh, "true");
  return c;
}

}  // namespace sw::auth
