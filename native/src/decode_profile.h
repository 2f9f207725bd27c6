// Phase timers of the native decode steps (motDecodeStep, motDecodeBatch), read by
// bench/decode-batch.bench.ts through motDecodeProfile: where the time of one step goes. Off
// unless a caller turns them on, so a step pays one untaken branch per phase.
#pragma once
#include <cstdint>
#include <ctime>

namespace uc::profile {

enum Phase : int { kSetup, kNorms, kProjections, kAttention, kMlp, kOutput, kPhaseCount };
extern const char* const kPhaseNames[kPhaseCount];

// Nanoseconds spent per phase since the last read, and whether timing is on.
struct Totals {
  bool on = false;
  int64_t ns[kPhaseCount] = {};
};
Totals& totals();

// The calling thread's CPU time in ns: unlike the wall clock it leaves out the time the thread
// waited for a core, so the phases still add up on a machine shared with other work.
inline int64_t threadNs() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

// Splits a stretch of code into phases: each to(p) adds the CPU time since the previous mark to p.
class Laps {
 public:
  Laps() : on_(totals().on), last_(on_ ? threadNs() : 0) {}
  void to(Phase p) {
    if (!on_) return;
    const int64_t now = threadNs();
    totals().ns[p] += now - last_;
    last_ = now;
  }

 private:
  bool on_;
  int64_t last_;
};

}  // namespace uc::profile
