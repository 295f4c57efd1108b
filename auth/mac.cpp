#include "mac.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace sw::auth {
namespace {

constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int base64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// One HMAC context per thread, with the digest set once: EVP_MAC_init then
// only re-keys it, instead of fetching HMAC and SHA-256 on every call. It
// also keeps the key it was given last: setting a key hashes the padded key
// twice, which with the same key again (the nonce secret on every challenge
// and every answer) EVP_MAC_init with no key skips by restarting from the
// kept state.
struct ThreadHmac {
  EVP_MAC_CTX* ctx = nullptr;
  std::string key;  // what ctx is keyed with, when keyed
  bool keyed = false;

  ThreadHmac() {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (mac == nullptr) return;
    ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);  // the context keeps its own reference
    if (ctx == nullptr) return;
    char digest[] = "SHA2-256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (EVP_MAC_CTX_set_params(ctx, params) != 1) {
      EVP_MAC_CTX_free(ctx);
      ctx = nullptr;
    }
  }
  ThreadHmac(const ThreadHmac&) = delete;
  ThreadHmac& operator=(const ThreadHmac&) = delete;
  ~ThreadHmac() {
    if (!key.empty()) OPENSSL_cleanse(key.data(), key.size());
    EVP_MAC_CTX_free(ctx);
  }

  bool start(std::string_view k) {
    if (keyed && k.size() == key.size() && CRYPTO_memcmp(k.data(), key.data(), k.size()) == 0)
      return EVP_MAC_init(ctx, nullptr, 0, nullptr) == 1;
    keyed = false;
    // OpenSSL wants a non-null key pointer even for an empty key.
    static const unsigned char empty_key = 0;
    const auto* bytes = k.empty() ? &empty_key : reinterpret_cast<const unsigned char*>(k.data());
    if (EVP_MAC_init(ctx, bytes, k.size(), nullptr) != 1) return false;
    if (!key.empty()) OPENSSL_cleanse(key.data(), key.size());
    key.assign(k);
    keyed = true;
    return true;
  }
};

ThreadHmac& thread_hmac() {
  thread_local ThreadHmac hmac;
  return hmac;
}

}  // namespace

std::string hmac_sha256(std::string_view key, std::initializer_list<std::string_view> parts) {
  ThreadHmac& hmac = thread_hmac();
  if (hmac.ctx == nullptr) return {};
  // A failure part-way leaves the context in an unknown state: key it anew next time.
  bool ok = hmac.start(key);
  for (auto part = parts.begin(); ok && part != parts.end(); ++part)
    ok = EVP_MAC_update(hmac.ctx, reinterpret_cast<const unsigned char*>(part->data()), part->size()) == 1;
  std::array<unsigned char, EVP_MAX_MD_SIZE> full{};
  std::size_t len = 0;
  ok = ok && EVP_MAC_final(hmac.ctx, full.data(), &len, full.size()) == 1 && len == 32;
  if (!ok) {
    hmac.keyed = false;
    return {};
  }
  return std::string(reinterpret_cast<const char*>(full.data()), len);
}

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    std::uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(kBase64Url[(v >> shift) & 0x3f]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    std::uint32_t v = byte(i) << 16;
    out.push_back(kBase64Url[(v >> 18) & 0x3f]);
    out.push_back(kBase64Url[(v >> 12) & 0x3f]);
  } else if (rest == 2) {
    std::uint32_t v = byte(i) << 16 | byte(i + 1) << 8;
    out.push_back(kBase64Url[(v >> 18) & 0x3f]);
    out.push_back(kBase64Url[(v >> 12) & 0x3f]);
    out.push_back(kBase64Url[(v >> 6) & 0x3f]);
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int d = base64url_value(c);
    if (d < 0) return std::nullopt;
    acc = (acc << 6 | static_cast<std::uint32_t>(d)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Spare bits must be zero, so that every byte string has one spelling only.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    std::random_device device;
    for (auto& c : raw) c = static_cast<unsigned char>(device());
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (auto c : raw) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

}  // namespace sw::auth
