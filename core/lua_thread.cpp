// The Lua-thread rule of core/lua_thread.h: a queue of calls served by the
// Lua thread while it waits for work running on a helper thread.
#include "core/lua_thread.h"

#include <ATen/ThreadLocalState.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace kinema::lua {

namespace {

struct Call {
  const std::function<void()>* fn;
  std::exception_ptr error;
  bool done = false;
};

std::mutex g_mutex;
std::condition_variable g_changed;  // a call queued or finished, or some work done
std::deque<Call*> g_queue;
int g_serving = 0;  // nested serve_lua_while calls now waiting on the Lua thread
std::thread::id g_lua_thread;

}  // namespace

void set_lua_thread(bool owner) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_lua_thread = owner ? std::this_thread::get_id() : std::thread::id();
}

bool on_lua_thread() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_lua_thread == std::this_thread::get_id();
}

void run_on_lua_thread(const std::function<void()>& fn, const char* what) {
  if (on_lua_thread()) {
    fn();
    return;
  }
  Call call{&fn, nullptr};
  std::unique_lock<std::mutex> lock(g_mutex);
  if (g_serving == 0) {
    throw std::runtime_error(std::string(what) +
                             " was called on a thread other than the Lua thread while the Lua thread is not "
                             "waiting for it (the Lua state is never entered from two threads): start backward "
                             "from Lua, with t:backward() or torch.autograd.grad");
  }
  g_queue.push_back(&call);
  g_changed.notify_all();
  g_changed.wait(lock, [&] { return call.done; });
  if (call.error) std::rethrow_exception(call.error);
}

void serve_lua_while(const std::function<void()>& work) {
  struct Run {
    bool done = false;
    std::exception_ptr error;
  } run;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    ++g_serving;
  }
  const at::ThreadLocalState state;  // grad mode, dispatch keys, ... of the Lua thread
  std::thread helper([&] {
    at::ThreadLocalStateGuard guard(state);
    try {
      work();
    } catch (...) {
      run.error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(g_mutex);
    run.done = true;
    g_changed.notify_all();
  });
  std::unique_lock<std::mutex> lock(g_mutex);
  for (;;) {
    g_changed.wait(lock, [&] { return run.done || !g_queue.empty(); });
    if (g_queue.empty()) break;  // done, and nothing left that a finished node still waits for
    Call* call = g_queue.front();
    g_queue.pop_front();
    lock.unlock();
    try {
      (*call->fn)();
    } catch (...) {
      call->error = std::current_exception();
    }
    lock.lock();
    call->done = true;
    g_changed.notify_all();
  }
  --g_serving;
  lock.unlock();
  helper.join();
  if (run.error) std::rethrow_exception(run.error);
}

}  // namespace kinema::lua
