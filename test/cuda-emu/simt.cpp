// The SIMT emulator's scheduler: one fiber per CUDA thread, switched by a small x86-64 context
// switch at __syncthreads and warp collectives; the tensor-core and cp.async emulation of
// cuda/gemm_tc.cuh. See simt.h for what it checks.
#include "simt.h"

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "dtype.h"
#include "emu_internal.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define EMU_START_SWITCH(save, bottom, size) __sanitizer_start_switch_fiber(save, bottom, size)
#define EMU_FINISH_SWITCH(save, bottom, size) __sanitizer_finish_switch_fiber(save, bottom, size)
#define EMU_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define EMU_START_SWITCH(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#define EMU_FINISH_SWITCH(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#define EMU_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#if !defined(__x86_64__)
#error "the SIMT emulator's context switch is written for x86-64"
#endif

// difflm_emu_switch(save, to): saves the callee-saved registers, MXCSR and the x87 control word
// on the current stack, stores the stack pointer in *save, and resumes the context whose stack
// pointer is `to`. A new fiber's stack is laid out so that the first switch "returns" into
// difflm_emu_entry, which calls difflm_emu_fiber_main with a 16-byte aligned stack.
extern "C" void difflm_emu_switch(void** save, void* to);
extern "C" void difflm_emu_entry();
extern "C" void difflm_emu_fiber_main();
asm(R"(
  .pushsection .text
  .globl difflm_emu_switch
  .type difflm_emu_switch, @function
difflm_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size difflm_emu_switch, .-difflm_emu_switch

  .globl difflm_emu_entry
  .type difflm_emu_entry, @function
difflm_emu_entry:
  call difflm_emu_fiber_main
  ud2
  .size difflm_emu_entry, .-difflm_emu_entry
  .popsection
)");

namespace difflm_emu {
namespace {

constexpr size_t kStack = 128 * 1024, kGuard = 4096;
constexpr int kMaxThreads = 1024;

enum class State : uint8_t { Ready, AtBarrier, AtWarp, Done };

struct PendingCopy {
  void* dst;
  unsigned char bytes[16];
  uint64_t group;
};

struct Fiber {
  void* sp = nullptr;
  unsigned char* stack = nullptr;  // lowest usable address
  void* fake_stack = nullptr;      // ASan bookkeeping
  ThreadCtx ctx{};
  State state = State::Ready;
  int lane = 0, warp = 0;
  // The warp collective this fiber waits in.
  WarpOp op = WarpOp::Sync;
  unsigned mask = 0;
  uint64_t value = 0, result = 0;
  int arg = 0, width = 32;
  void (*compute)(void**) = nullptr;  // WarpOp::Sync with a computation over every lane's data
  std::vector<PendingCopy> copies;
  uint64_t groups = 0;  // cp.async groups committed
};

struct Run {
  std::vector<Fiber> fibers;
  int threads = 0, live = 0;
  std::vector<int> ready;  // fibers to run, first in first out from ready_head
  size_t ready_head = 0;
  std::vector<int> barrier;                                    // fibers waiting at __syncthreads
  std::vector<unsigned> warp_arrived, warp_done, warp_exists;  // lane masks per warp
  std::mt19937 rng;
  void* sched_sp = nullptr;
  void* sched_fake = nullptr;
  const void* sched_bottom = nullptr;
  size_t sched_size = 0;
  Fiber* cur = nullptr;
  void (*body)(void*) = nullptr;
  void* arg = nullptr;
  bool fault = false;
  std::string why;
  unsigned char* smem = nullptr;
  size_t smem_bytes = 0;
};

thread_local Run* g_run = nullptr;

// Fiber stacks, mapped once per OS thread and reused, each with a guard page below it.
struct Stacks {
  unsigned char* base = nullptr;
  bool dirty = false;  // a fiber was abandoned mid-frame (ASan poison left on its stack)
  Stacks() {
    const size_t per = kStack + kGuard, total = per * kMaxThreads;
    void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      std::fprintf(stderr, "difflm emulator: cannot map fiber stacks\n");
      std::abort();
    }
    base = static_cast<unsigned char*>(p);
    for (int i = 0; i < kMaxThreads; ++i) mprotect(base + i * per, kGuard, PROT_NONE);
  }
  unsigned char* stack(int i) const { return base + i * (kStack + kGuard) + kGuard; }
};
Stacks& stacks() {
  thread_local Stacks s;
  return s;
}

void to_scheduler(Run& r, Fiber& f, bool dying) {
  EMU_START_SWITCH(dying ? nullptr : &f.fake_stack, r.sched_bottom, r.sched_size);
  difflm_emu_switch(&f.sp, r.sched_sp);
  EMU_FINISH_SWITCH(f.fake_stack, &r.sched_bottom, &r.sched_size);
}

// Abandons the running fiber: its frames never unwind, so the message is formatted here, with
// printf arguments, rather than built from std::string temporaries that would leak.
[[noreturn]] __attribute__((format(printf, 2, 3))) void fault(Run& r, const char* fmt, ...) {
  Fiber& f = *r.cur;
  char msg[320];
  va_list args;
  va_start(args, fmt);
  const int n = std::vsnprintf(msg, sizeof msg, fmt, args);
  va_end(args);
  const size_t used = n < 0 ? 0 : std::min<size_t>(static_cast<size_t>(n), sizeof msg - 1);
  std::snprintf(msg + used, sizeof msg - used, " (seen in block %u,%u,%u, thread %u,%u,%u)",
                f.ctx.block_idx.x, f.ctx.block_idx.y, f.ctx.block_idx.z, f.ctx.thread_idx.x,
                f.ctx.thread_idx.y, f.ctx.thread_idx.z);
  r.fault = true;
  r.why = msg;  // the Run outlives the fiber
  stacks().dirty = true;
  to_scheduler(r, f, true);
  __builtin_unreachable();
}

void make_ready(Run& r, int i) {
  r.fibers[i].state = State::Ready;
  r.ready.push_back(i);
}

// Every live thread is at __syncthreads: all go on, in a shuffled order.
void release_barrier_if_complete(Run& r) {
  if (r.barrier.empty() || static_cast<int>(r.barrier.size()) < r.live) return;
  std::shuffle(r.barrier.begin(), r.barrier.end(), r.rng);
  for (int i : r.barrier) make_ready(r, i);
  r.barrier.clear();
}

// Completes the collective of the lanes waiting with `mask` in warp `w` once all have arrived.
void complete_warp(Run& r, int w, unsigned mask) {
  Fiber* lanes = r.fibers.data() + w * 32;
  if (mask & ~r.warp_exists[w]) fault(r, "warp collective: mask names a lane beyond the block");
  if (mask & r.warp_done[w]) fault(r, "warp collective: mask names a lane that has exited");
  if ((r.warp_arrived[w] & mask) != mask) return;  // not all there yet
  const Fiber* first = nullptr;
  for (int l = 0; l < 32; ++l) {
    if (!((mask >> l) & 1)) continue;
    const Fiber& x = lanes[l];
    if (x.mask != mask || (first && (x.op != first->op || x.compute != first->compute)))
      fault(r, "warp collective: lanes wait in different collectives (divergent mask or op)");
    if (!first) first = &x;
  }
  r.warp_arrived[w] &= ~mask;
  if (first->compute) {
    void* data[32] = {};
    for (int l = 0; l < 32; ++l)
      if ((mask >> l) & 1) data[l] = reinterpret_cast<void*>(lanes[l].value);
    first->compute(data);
  }
  for (int l = 0; l < 32; ++l) {
    if (!((mask >> l) & 1)) continue;
    Fiber& x = lanes[l];
    const int seg = l & ~(x.width - 1), end = seg + x.width;
    int src = l;
    switch (x.op) {
      case WarpOp::Idx: src = seg | (x.arg & (x.width - 1)); break;
      case WarpOp::Xor: src = l ^ (x.arg & 31); break;
      case WarpOp::Down: src = l + (x.arg & 31); break;
      case WarpOp::Up: src = l - (x.arg & 31); break;
      default: break;
    }
    // Out of the segment: the lane's own value (xor may read earlier segments, PTX shfl.bfly).
    if ((x.op != WarpOp::Xor && src < seg) || src >= end || src >= 32) src = l;
    switch (x.op) {
      case WarpOp::Idx:
      case WarpOp::Xor:
      case WarpOp::Down:
      case WarpOp::Up:
        if (!((mask >> src) & 1))
          fault(r, "shuffle: lane %d reads lane %d, outside the mask", l, src);
        x.result = lanes[src].value;
        break;
      case WarpOp::MatchAny: {
        uint64_t m = 0;
        for (int j = 0; j < 32; ++j)
          if (((mask >> j) & 1) && lanes[j].value == x.value) m |= 1ull << j;
        x.result = m;
        break;
      }
      case WarpOp::Ballot: {
        uint64_t m = 0;
        for (int j = 0; j < 32; ++j)
          if (((mask >> j) & 1) && lanes[j].value) m |= 1ull << j;
        x.result = m;
        break;
      }
      case WarpOp::Sync: x.result = 0; break;
    }
  }
  for (int l = 0; l < 32; ++l)
    if ((mask >> l) & 1) make_ready(r, w * 32 + l);
}

// After lane `lane` of warp `w` exits: a collective whose mask names it can never complete.
void lane_exited(Run& r, int w, int lane) {
  r.warp_done[w] |= 1u << lane;
  for (int l = 0; l < 32; ++l)
    if (((r.warp_arrived[w] >> l) & 1) && ((r.fibers[w * 32 + l].mask >> lane) & 1))
      fault(r, "warp collective: mask names lane %d, which has exited", lane);
}

uint64_t collective(WarpOp op, unsigned mask, uint64_t bits, int arg, int width,
                    void (*compute)(void**)) {
  Run& r = *g_run;
  Fiber& f = *r.cur;
  if (!((mask >> f.lane) & 1)) fault(r, "warp collective: the calling lane is not in its own mask");
  if (width < 1 || width > 32 || (width & (width - 1)))
    fault(r, "shuffle: width %d is not a power of 2 up to 32", width);
  f.op = op;
  f.mask = mask;
  f.value = bits;
  f.arg = arg;
  f.width = width;
  f.compute = compute;
  f.state = State::AtWarp;
  r.warp_arrived[f.warp] |= 1u << f.lane;
  complete_warp(r, f.warp, mask);
  to_scheduler(r, f, false);
  return f.result;
}

std::string describe_deadlock(const Run& r) {
  int barrier = 0, warp = 0;
  std::string detail;
  for (const Fiber& f : r.fibers) {
    if (f.state == State::AtBarrier) ++barrier;
    if (f.state == State::AtWarp) {
      if (++warp == 1) {
        char m[64];
        std::snprintf(m, sizeof m, "; e.g. thread %u waits for lanes 0x%08x", f.ctx.thread_idx.x,
                      f.mask);
        detail = m;
      }
    }
  }
  return "deadlock: " + std::to_string(barrier) + " threads wait at __syncthreads, " +
         std::to_string(warp) + " in warp collectives, " + std::to_string(r.live) + " live" +
         detail;
}

uint32_t rng_seed() {
  const char* s = std::getenv("DIFFLM_EMU_SEED");
  return s ? static_cast<uint32_t>(std::strtoul(s, nullptr, 10)) : 1u;
}

}  // namespace
}  // namespace difflm_emu

extern "C" void difflm_emu_fiber_main() {
  using namespace difflm_emu;
  Run& r = *g_run;
  EMU_FINISH_SWITCH(nullptr, &r.sched_bottom, &r.sched_size);
  r.body(r.arg);
  Fiber& f = *r.cur;
  f.state = State::Done;
  --r.live;
  release_barrier_if_complete(r);
  lane_exited(r, f.warp, f.lane);
  to_scheduler(r, f, true);
  __builtin_unreachable();
}

namespace difflm_emu {

const ThreadCtx& ctx() {
  return g_run->cur->ctx;
}

void syncthreads() {
  Run& r = *g_run;
  Fiber& f = *r.cur;
  f.state = State::AtBarrier;
  r.barrier.push_back(static_cast<int>(&f - r.fibers.data()));
  release_barrier_if_complete(r);
  to_scheduler(r, f, false);
}

uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t bits, int arg, int width) {
  return collective(op, mask, bits, arg, width, nullptr);
}

void* dynamic_smem(size_t align) {
  Run& r = *g_run;
  if (reinterpret_cast<uintptr_t>(r.smem) % align != 0)
    fault(r, "dynamic shared memory: alignment %zu not met", align);
  return r.smem;
}

void trap(const char* why) {
  fault(*g_run, "%s", why);
}

void run_grid(const char* name, dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
              const void* kernel, void (*body)(void*), void* arg) {
  if (g_run) fault(*g_run, "kernel %s launched from inside a kernel", name);
  if (has_sticky_fault()) return;
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (threads == 0 || threads > kMaxThreads || block.z > 64 || grid.x == 0 || grid.y == 0 ||
      grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535) {
    set_last_error(cudaErrorInvalidConfiguration);
    return;
  }
  if (smem > dynamic_smem_limit(kernel)) {
    set_last_error(cudaErrorInvalidValue);
    return;
  }
  if (!valid_stream(stream)) {
    set_last_error(cudaErrorInvalidResourceHandle);
    return;
  }
  if (take_injected_launch_fault()) {
    set_sticky_fault(std::string("kernel ") + name + ": injected fault");
    return;
  }
  Run r;
  r.threads = static_cast<int>(threads);
  r.body = body;
  r.arg = arg;
  r.fibers.resize(r.threads);
  r.smem_bytes = smem;
  void* sm = nullptr;
  if (posix_memalign(&sm, 1024, std::max<size_t>(smem, 1)) != 0) {
    set_last_error(cudaErrorMemoryAllocation);
    return;
  }
  r.smem = static_cast<unsigned char*>(sm);
  const int warps = (r.threads + 31) / 32;
  r.warp_exists.assign(warps, ~0u);
  if (r.threads % 32) r.warp_exists[warps - 1] = (1u << (r.threads % 32)) - 1;
  r.rng.seed(rng_seed());
  Stacks& st = stacks();
  if (st.dirty) {  // abandoned frames of an earlier fault left ASan poison on some stacks
    for (int i = 0; i < kMaxThreads; ++i) EMU_UNPOISON(st.stack(i), kStack);
    st.dirty = false;
  }
  g_run = &r;
  for (unsigned bz = 0; bz < grid.z && !r.fault; ++bz)
    for (unsigned by = 0; by < grid.y && !r.fault; ++by)
      for (unsigned bx = 0; bx < grid.x && !r.fault; ++bx) {
        std::memset(r.smem, 0xff, smem);  // shared memory starts undefined: NaN bytes
        for (int i = 0; i < r.threads; ++i) {
          Fiber& f = r.fibers[i];
          f = Fiber{};
          f.ctx.thread_idx =
              make_uint3(i % block.x, (i / block.x) % block.y, i / (block.x * block.y));
          f.ctx.block_idx = make_uint3(bx, by, bz);
          f.ctx.block_dim = block;
          f.ctx.grid_dim = grid;
          f.lane = i % 32;
          f.warp = i / 32;
          f.stack = st.stack(i);
          // Initial frame (see difflm_emu_switch): MXCSR and x87 control word, six registers,
          // then the return address difflm_emu_entry; 16-byte aligned at entry.
          auto* top = reinterpret_cast<uint64_t*>(f.stack + kStack - 80);
          const uint32_t mxcsr = 0x1f80;
          const uint16_t fpcw = 0x037f;
          std::memcpy(top, &mxcsr, 4);
          std::memcpy(reinterpret_cast<unsigned char*>(top) + 4, &fpcw, 2);
          for (int k = 1; k <= 6; ++k) top[k] = 0;
          top[7] = reinterpret_cast<uint64_t>(&difflm_emu_entry);
          f.sp = top;
        }
        r.live = r.threads;
        r.barrier.clear();
        r.warp_arrived.assign(warps, 0);
        r.warp_done.assign(warps, 0);
        r.ready.clear();
        r.ready_head = 0;
        for (int i = 0; i < r.threads; ++i) r.ready.push_back(i);
        std::shuffle(r.ready.begin(), r.ready.end(), r.rng);
        while (r.live > 0 && !r.fault) {
          if (r.ready_head == r.ready.size()) {
            r.fault = true;
            r.why = describe_deadlock(r) + " (block " + std::to_string(bx) + ")";
            break;
          }
          Fiber& f = r.fibers[r.ready[r.ready_head++]];
          if (r.ready_head == r.ready.size() || r.ready_head > 4096) {
            r.ready.erase(r.ready.begin(), r.ready.begin() + static_cast<long>(r.ready_head));
            r.ready_head = 0;
          }
          r.cur = &f;
          EMU_START_SWITCH(&r.sched_fake, f.stack, kStack);
          difflm_emu_switch(&r.sched_sp, f.sp);
          EMU_FINISH_SWITCH(r.sched_fake, nullptr, nullptr);
        }
      }
  g_run = nullptr;
  std::free(r.smem);
  if (r.fault) {
    st.dirty = true;
    set_sticky_fault(std::string("kernel ") + name + ": " + r.why);
  }
}

// ---------------------------------------------------------------------------------------------
// cp.async, ldmatrix and mma.sync (PTX ISA semantics; fragment layouts as in cuda/gemm_tc.cuh)
// ---------------------------------------------------------------------------------------------

namespace {

// Tensor-core and async-copy instructions exist from these compute capabilities on (PTX ISA
// target requirements); a kernel that reaches one on an older emulated device would trap there.
void require_cc(Run& r, int cc, const char* what) {
  const EmulatedDevice& d = emulated_device();
  if (d.cc_major * 10 + d.cc_minor < cc)
    fault(r, "%s needs compute capability %d.%d", what, cc / 10, cc % 10);
}
// These instructions address shared memory only (cuda/gemm_tc.cuh: the dynamic shared memory).
void require_smem(Run& r, const void* p, size_t n, const char* what) {
  const auto* c = static_cast<const unsigned char*>(p);
  if (c < r.smem || c + n > r.smem + r.smem_bytes)
    fault(r, "%s: address outside the block's dynamic shared memory", what);
}

}  // namespace

void cp_async16(void* smem, const void* gmem, int src_bytes) {
  Run& r = *g_run;
  Fiber& f = *r.cur;
  require_cc(r, 80, "cp.async");
  require_smem(r, smem, 16, "cp.async");
  if (src_bytes < 0 || src_bytes > 16) fault(r, "cp.async: source size out of range");
  if (reinterpret_cast<uintptr_t>(smem) % 16 ||
      (src_bytes && reinterpret_cast<uintptr_t>(gmem) % 16))
    fault(r, "cp.async: address not 16-byte aligned");
  PendingCopy c{smem, {}, f.groups};
  if (src_bytes) std::memcpy(c.bytes, gmem, src_bytes);  // zero fill beyond
  f.copies.push_back(c);
  std::memset(smem, 0xff, 16);  // undefined until the wait: a recycled stage must not look valid
}

void cp_async_commit() {
  ++g_run->cur->groups;
}

void cp_async_wait(int n) {
  Fiber& f = *g_run->cur;
  const uint64_t done = f.groups >= static_cast<uint64_t>(n) ? f.groups - n : 0;
  size_t kept = 0;
  for (PendingCopy& c : f.copies) {
    if (c.group < done)
      std::memcpy(c.dst, c.bytes, 16);
    else
      f.copies[kept++] = c;
  }
  f.copies.resize(kept);
}

namespace {

struct LdmatrixLane {
  const unsigned char* addr;
  uint32_t* r;
};
void ldmatrix_all(void** data) {
  for (int l = 0; l < 32; ++l) {
    auto* me = static_cast<LdmatrixLane*>(data[l]);
    for (int j = 0; j < 4; ++j) {
      const auto* row = static_cast<LdmatrixLane*>(data[j * 8 + l / 4]);
      std::memcpy(&me->r[j], row->addr + 4 * (l % 4), 4);
    }
  }
}

struct MmaLane {
  float* d;
  const uint32_t* a;
  const uint32_t* b;
  bool bf16;
};
float half_of(uint32_t word, int hi, bool bf16) {
  const uint16_t h = static_cast<uint16_t>(hi ? word >> 16 : word);
  return bf16 ? difflm::bf16_to_f32(h) : difflm::f16_to_f32(h);
}
// x rounded toward zero to float32.
float round_toward_zero(double x) {
  float f = static_cast<float>(x);  // to nearest
  if (!std::isnan(x) && std::fabs(static_cast<double>(f)) > std::fabs(x))
    f = std::nextafter(f, 0.f);
  return f;
}

// D = A B + C for every lane's four accumulators (C/D fragments as in cuda/gemm_tc.cuh: d[0], d[1]
// at row g, cols 2t, 2t+1; d[2], d[3] at row g+8), with A [16][k] and B [k][8] row-major, summed
// as the tensor cores of sm_80 and newer sum (Fasi, Higham, Mikaitis and Pranesh, "Numerical
// behavior of NVIDIA tensor cores", 2021): products exact, C plus the products rounded toward
// zero to float32. Modelled as the sum in double (the products are exact there; the sum is
// exact unless the addends' exponents are far apart) rounded toward zero once; the hardware's
// alignment of the addends can lose a little more. So a kernel that chains many mma into one
// accumulator shows the bias toward zero here as on a GPU: a numpy simulation of the model gave
// 4.7e-6 and 1.6e-5 for the check's BF16 GEMMs at K 4096 and 12288 where the H200 gave 4.05e-6
// and 1.34e-5 (rounding to nearest: ~3e-7 and 5e-7).
void add_product(void** data, const float* a, const float* b, int k_dim) {
  for (int l = 0; l < 32; ++l) {
    float* d = static_cast<MmaLane*>(data[l])->d;
    const int g = l / 4, t = l % 4;
    for (int e = 0; e < 4; ++e) {
      const int row = g + 8 * (e / 2), col = 2 * t + (e % 2);
      double s = d[e];
      for (int k = 0; k < k_dim; ++k)
        s += static_cast<double>(a[row * k_dim + k]) * static_cast<double>(b[k * 8 + col]);
      d[e] = round_toward_zero(s);
    }
  }
}
// The warp's A (16 x 16, row-major) and B (16 x 8, k x n) from the lanes' fragments (g = lane / 4,
// t = lane % 4; layouts in cuda/gemm_tc.cuh), then D = A B + C for every lane's four elements.
void mma_all(void** data) {
  const bool bf16 = static_cast<MmaLane*>(data[0])->bf16;
  float a[16][16], b[16][8];
  for (int row = 0; row < 16; ++row)
    for (int k = 0; k < 16; ++k) {
      const auto* x = static_cast<MmaLane*>(data[(row % 8) * 4 + (k % 8) / 2]);
      a[row][k] = half_of(x->a[(row >= 8) + 2 * (k >= 8)], k % 2, bf16);
    }
  for (int k = 0; k < 16; ++k)
    for (int n = 0; n < 8; ++n) {
      const auto* x = static_cast<MmaLane*>(data[n * 4 + (k % 8) / 2]);
      b[k][n] = half_of(x->b[k >= 8], k % 2, bf16);
    }
  add_product(data, &a[0][0], &b[0][0], 16);
}

// m16n8k8 with tf32 operands (fragments in cuda/mma_tf32.cuh): A 16 x 8 row-major, a[0]: (g, t),
// a[1]: (g+8, t), a[2]: (g, t+4), a[3]: (g+8, t+4); B 8 x 8 (k x n), b[0]: (k t, n g),
// b[1]: (k t+4, n g); C as for m16n8k16. The low 13 bits of each operand are dropped, as the
// tensor core ignores them: a kernel that feeds unrounded floats gets truncation, not its data.
float tf32_operand(uint32_t word) {
  const uint32_t bits = word & 0xffffe000u;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
void mma_tf32_all(void** data) {
  float a[16][8], b[8][8];
  for (int row = 0; row < 16; ++row)
    for (int k = 0; k < 8; ++k) {
      const auto* x = static_cast<MmaLane*>(data[(row % 8) * 4 + k % 4]);
      a[row][k] = tf32_operand(x->a[(row >= 8) + 2 * (k >= 4)]);
    }
  for (int k = 0; k < 8; ++k)
    for (int n = 0; n < 8; ++n) {
      const auto* x = static_cast<MmaLane*>(data[n * 4 + k % 4]);
      b[k][n] = tf32_operand(x->b[k >= 4]);
    }
  add_product(data, &a[0][0], &b[0][0], 8);  // exact products (11 x 11 bits)
}

}  // namespace

float cvt_rna_tf32(float x) {
  require_cc(*g_run, 80, "cvt.rna.tf32.f32");
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;  // magnitude + half ulp
  std::memcpy(&x, &u, 4);
  return x;
}

void mma1688_tf32(float d[4], const uint32_t a[4], const uint32_t b[2]) {
  require_cc(*g_run, 80, "mma.sync tf32");
  MmaLane me{d, a, b, false};
  collective(WarpOp::Sync, 0xffffffffu, reinterpret_cast<uint64_t>(&me), 0, 32, mma_tf32_all);
}

void ldmatrix_x4(uint32_t r[4], const void* smem) {
  LdmatrixLane me{static_cast<const unsigned char*>(smem), r};
  require_cc(*g_run, 75, "ldmatrix");
  require_smem(*g_run, smem, 16, "ldmatrix");
  if (reinterpret_cast<uintptr_t>(smem) % 16)
    fault(*g_run, "ldmatrix: row address not 16-byte aligned");
  collective(WarpOp::Sync, 0xffffffffu, reinterpret_cast<uint64_t>(&me), 0, 32, ldmatrix_all);
}

void mma16816(float d[4], const uint32_t a[4], const uint32_t b[2], bool bf16) {
  // BF16 mma and the f16 m16n8k16 shape need sm_80; sm_75's f16 is two m16n8k8, the same sum.
  require_cc(*g_run, bf16 ? 80 : 75, bf16 ? "mma.sync bf16" : "mma.sync f16");
  MmaLane me{d, a, b, bf16};
  collective(WarpOp::Sync, 0xffffffffu, reinterpret_cast<uint64_t>(&me), 0, 32, mma_all);
}

}  // namespace difflm_emu
