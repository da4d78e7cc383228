// The Lua-thread rule of core/lua_thread.h: calls handed to the Lua thread,
// served while it waits for engine work running on another thread.
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

// Work run on some thread, its exception kept for the thread that waits on it.
struct Job {
  const std::function<void()>* fn;
  std::exception_ptr error;
  bool done = false;

  void run() {
    try {
      (*fn)();
    } catch (...) {
      error = std::current_exception();
    }
  }
};

// A call handed to the Lua thread. While the Lua thread runs it, the handing
// thread waits and may be given engine work back (assist): a backward the Lua
// code starts there runs on that thread, which is an engine thread (a device
// thread for CUDA), so the engine treats it as reentrant instead of queueing
// it behind the node that waits for it.
struct Call : Job {
  Job* assist = nullptr;
};

std::mutex g_mutex;
std::condition_variable g_changed;  // a call queued or finished, an assist posted or finished
std::deque<Call*> g_queue;
int g_serving = 0;             // serve_lua_while calls now waiting on the Lua thread
Call* g_running = nullptr;     // the handed-over call the Lua thread is running (innermost)
std::thread::id g_lua_thread;

// Runs `call` on the Lua thread, as the innermost running call. Lock held on entry and exit.
void run_call(Call* call, std::unique_lock<std::mutex>& lock) {
  Call* outer = g_running;
  g_running = call;
  lock.unlock();
  call->run();
  lock.lock();
  g_running = outer;
  call->done = true;
  g_changed.notify_all();
}

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
  Call call;
  call.fn = &fn;
  std::unique_lock<std::mutex> lock(g_mutex);
  if (g_serving == 0) {
    throw std::runtime_error(std::string(what) +
                             " was called on a thread other than the Lua thread while the Lua thread is not "
                             "waiting for it (the Lua state is never entered from two threads): start backward "
                             "from Lua, with t:backward() or torch.autograd.grad");
  }
  g_queue.push_back(&call);
  g_changed.notify_all();
  for (;;) {
    g_changed.wait(lock, [&] { return call.done || call.assist != nullptr; });
    if (call.done) break;
    Job* assist = call.assist;  // engine work the Lua code started while running this call
    call.assist = nullptr;
    lock.unlock();
    assist->run();
    lock.lock();
    assist->done = true;
    g_changed.notify_all();
  }
  if (call.error) std::rethrow_exception(call.error);
}

void serve_lua_while(const std::function<void()>& work) {
  const at::ThreadLocalState state;  // grad mode, dispatch keys, ... of the Lua thread
  const std::function<void()> with_state = [&] {
    at::ThreadLocalStateGuard guard(state);
    work();
  };
  Job job;
  job.fn = &with_state;
  std::unique_lock<std::mutex> lock(g_mutex);
  ++g_serving;
  std::thread helper;
  if (g_running != nullptr) {
    g_running->assist = &job;  // its thread waits for us: the work runs there
    g_changed.notify_all();
  } else {
    helper = std::thread([&] {
      job.run();
      std::lock_guard<std::mutex> done_lock(g_mutex);
      job.done = true;
      g_changed.notify_all();
    });
  }
  for (;;) {
    g_changed.wait(lock, [&] { return job.done || !g_queue.empty(); });
    if (g_queue.empty()) break;  // done, and no finished node still waits on a call
    Call* call = g_queue.front();
    g_queue.pop_front();
    run_call(call, lock);
  }
  --g_serving;
  lock.unlock();
  if (helper.joinable()) helper.join();
  if (job.error) std::rethrow_exception(job.error);
}

}  // namespace kinema::lua
