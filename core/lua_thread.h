#pragma once
// The rule for C++ threads and the Lua state: the state is entered only by the
// thread that created it (the Lua thread), never by two threads. Code that may
// run on another thread and needs Lua (the backward of a Lua autograd.Function,
// which the autograd engine runs on its device threads for CUDA inputs) hands
// the work to the Lua thread with run_on_lua_thread. The Lua thread serves such
// work only while it waits in serve_lua_while: the Lua entry points that start
// the autograd engine (t:backward, torch.autograd.grad) run the engine on a
// helper thread and serve until it finishes. A backward that a handed-over
// Lua backward starts runs on the thread that handed it over (an engine
// thread, so the engine runs it as a reentrant backward, as PyTorch does for a
// backward inside a backward), never queued behind the node that waits for it.
// Work that arrives while the Lua thread is not serving is refused with an
// error, never queued for later: a thread blocked on it could wait forever.
#include <functional>

namespace kinema::lua {

// Marks the calling thread as the Lua thread (set_main_state calls it), or
// clears the mark (owner = false).
void set_lua_thread(bool owner);
bool on_lua_thread();

// Runs fn on the Lua thread: directly when called there, else queued for the
// Lua thread while it serves (the caller blocks until fn has run; an exception
// from fn is rethrown here). Throws std::runtime_error, without running fn,
// when called on another thread while the Lua thread is not serving.
void run_on_lua_thread(const std::function<void()>& fn, const char* what);

// On the Lua thread: runs work on a helper thread, or, inside a handed-over
// call, on the thread waiting for that call (either way with this thread's
// autograd and dispatch state), and runs queued run_on_lua_thread calls here
// until work returns; rethrows work's exception.
void serve_lua_while(const std::function<void()>& work);

}  // namespace kinema::lua
