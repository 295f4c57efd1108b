// Costs of the digest engine: issuing and checking a nonce, verifying a
// response per algorithm (what a challenger pays per authenticated request),
// and parsing a typical Authorization header.
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

#include "auth/digest.hpp"
#include "auth/nonce.hpp"

namespace {

using namespace sw::auth;
using namespace std::chrono_literals;

const NonceIssuer::TimePoint kNow = NonceIssuer::TimePoint{} + 1'763'719'200s;
const std::string kSecret(32, '\x5a');

void BM_NonceIssue(benchmark::State& state) {
  NonceIssuer issuer(kSecret, 300s);
  for (auto _ : state)
    benchmark::DoNotOptimize(issuer.issue("lab.example", kNow, "192.0.2.10:5060"));
}
BENCHMARK(BM_NonceIssue);

void BM_NonceVerify(benchmark::State& state) {
  NonceIssuer issuer(kSecret, 300s);
  const std::string nonce = issuer.issue("lab.example", kNow, "192.0.2.10:5060");
  for (auto _ : state) {
    auto check = issuer.verify(nonce, "lab.example", kNow + 5s, "192.0.2.10:5060");
    benchmark::DoNotOptimize(check);
  }
}
BENCHMARK(BM_NonceVerify);

void BM_NonceCounterAccept(benchmark::State& state) {
  NonceCounter counter;
  std::uint32_t nc = 0;
  for (auto _ : state)
    benchmark::DoNotOptimize(counter.accept("Ab3dEf5hIj7lMn9pQr1tUv3xYz5_-7cd", ++nc));
}
BENCHMARK(BM_NonceCounterAccept);

// One verify: the expected response from the stored HA1, then the constant-time
// compare with what the phone sent (qop=auth, the common case).
void BM_Verify(benchmark::State& state) {
  const auto algorithm = static_cast<Algorithm>(state.range(0));
  state.SetLabel(std::string(to_string(algorithm)));
  const std::string ha1 = compute_ha1(algorithm, "1001", "lab.example", "secret1001");
  DigestInput in;
  in.algorithm = algorithm;
  in.ha1 = ha1;
  in.nonce = "Ab3dEf5hIj7lMn9pQr1tUv3xYz5_-7cd";
  in.cnonce = "0a4f113b";
  in.nc = "00000001";
  in.qop = Qop::auth;
  in.method = "REGISTER";
  in.uri = "sip:lab.example";
  const std::string sent = compute_response(in);
  for (auto _ : state) {
    bool ok = equal_constant_time(compute_response(in), sent);
    benchmark::DoNotOptimize(ok);
  }
}
BENCHMARK(BM_Verify)
    ->Arg(static_cast<int>(Algorithm::md5))
    ->Arg(static_cast<int>(Algorithm::md5_sess))
    ->Arg(static_cast<int>(Algorithm::sha256))
    ->Arg(static_cast<int>(Algorithm::sha512_256));

void BM_ParseCredentials(benchmark::State& state) {
  const std::string header =
      "Digest username=\"1001\", realm=\"lab.example\", "
      "nonce=\"Ab3dEf5hIj7lMn9pQr1tUv3xYz5_-7cd\", "
      "uri=\"sip:lab.example\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, "
      "cnonce=\"0a4f113b\", qop=auth, nc=00000001";
  for (auto _ : state) {
    auto c = parse_credentials(header);
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_ParseCredentials);

void BM_ParseChallenges(benchmark::State& state) {
  const std::string header =
      "Digest realm=\"lab.example\", nonce=\"Ab3dEf5hIj7lMn9pQr1tUv3xYz5_-7cd\", "
      "algorithm=SHA-256, "
      "qop=\"auth\", Digest realm=\"lab.example\", nonce=\"Ab3dEf5hIj7lMn9pQr1tUv3xYz5_-7cd\", "
      "algorithm=MD5, qop=\"auth\"";
  for (auto _ : state) {
    auto c = parse_challenges(header);
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_ParseChallenges);

}  // namespace

BENCHMARK_MAIN();
