// The thread-safety analysis must be on: .ci/run tsa compiles this file
// with -Wthread-safety -Werror twice, as it is (it must compile) and with
// -DCOFFER_TSA_CANARY_BREAK (a guarded field read without its mutex: it
// must fail). If the second compile passes, the analysis proves nothing.
#include "coffer/util/mutex.h"

namespace {

class Counter {
public:
    void add() {
        coffer::MutexLock lk(mu_);
        n_ += 1;
    }
    int peek() {
#ifdef COFFER_TSA_CANARY_BREAK
        return n_;
#else
        coffer::MutexLock lk(mu_);
        return n_;
#endif
    }

private:
    coffer::Mutex mu_;
    int n_ GUARDED_BY(mu_) = 0;
};

}  // namespace

int main() {
    Counter c;
    c.add();
    return c.peek() == 1 ? 0 : 1;
}
