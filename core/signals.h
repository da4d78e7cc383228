// Interrupts: SIGINT and SIGTERM as requests to stop, not as instant death.
//  - A training loop (kinema.train) catches both, checks signals::pending()
//    after each step, finishes it, checkpoints and returns; a second signal
//    goes to the handler that was there before (the REPL's: interrupt the
//    Lua code now; the default: end the process).
//  - The REPL turns SIGINT into a Lua error "interrupted" raised at the next
//    Lua instruction of the running command (a count hook), and into an
//    emptied input line at the prompt.
#pragma once

extern "C" {
#include <lua.h>
}

namespace kinema::signals {

// Installs the stop-request handler for SIGINT and SIGTERM (nested calls
// stack: release() restores what catch_stop() replaced).
void catch_stop();
void release_stop();
// Releases every catch_stop() still in effect (a loop left by an error).
void release_all_stops();
// The signal number received since catch_stop(), or 0.
int pending();

// The REPL's SIGINT handler: while evaluating (set_evaluating(L)), a SIGINT
// raises "interrupted" in L; otherwise it sets the prompt flag.
void install_repl_handler();
void set_evaluating(lua_State* L);  // nullptr: back at the prompt
bool take_prompt_interrupt();

}  // namespace kinema::signals
