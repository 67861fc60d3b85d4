// Internal interface between the launch table (kernels.cpp) and the runtime (emulation.cpp).
#ifndef FLINT_EMULATION_INTERNAL_H
#define FLINT_EMULATION_INTERNAL_H

#include <string>

namespace flint_emu {
// Runs entry(context) as every thread of every block; returns a FLINT_EMU_* code. `checked`:
// flint_load / flint_store accesses are bounds-checked against the registered allocations.
int launch_grid(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                unsigned shared_bytes, bool checked, void (*entry)(void*), void* context);
void register_allocation(const void* base, size_t bytes);
void unregister_allocation(const void* base);
const char* last_error_message();
void set_last_error(const std::string& message);
void set_threads(int threads);
}  // namespace flint_emu

#endif
