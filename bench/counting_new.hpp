#pragma once
// Counts every heap allocation and release of the benchmark binary that
// includes this (exactly one translation unit per binary: it replaces the
// global operator new/delete). Allocations per message are a cost of their own
// on the hot path, and live allocations explain a flow's bytes.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <new>

namespace bench_alloc {
inline thread_local std::uint64_t allocs = 0;
inline thread_local std::uint64_t frees = 0;
}  // namespace bench_alloc

[[gnu::noinline]] void* operator new(std::size_t n) {
  ++bench_alloc::allocs;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t n) { return ::operator new(n); }
[[gnu::noinline]] void operator delete(void* p) noexcept {
  if (p) ++bench_alloc::frees;
  std::free(p);
}
[[gnu::noinline]] void operator delete[](void* p) noexcept { ::operator delete(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { ::operator delete(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { ::operator delete(p); }

namespace bench_alloc {

// Reports the allocations per iteration of the benchmark loop it brackets
// (the "allocs" counter).
class PerIteration {
 public:
  explicit PerIteration(benchmark::State& state) : state_(state), start_(allocs) {}
  ~PerIteration() {
    state_.counters["allocs"] =
        benchmark::Counter(static_cast<double>(allocs - start_), benchmark::Counter::kAvgIterations);
  }
  PerIteration(const PerIteration&) = delete;
  PerIteration& operator=(const PerIteration&) = delete;

 private:
  benchmark::State& state_;
  std::uint64_t start_;
};

}  // namespace bench_alloc
