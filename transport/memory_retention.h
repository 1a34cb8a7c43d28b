#pragma once
// Message buffers of a megabyte and more are allocated and freed for every message (ZeroMQ's
// receive buffer, the decoded tensors, copied frames). glibc's default malloc gives such blocks
// back to the kernel on free (munmap, heap trimming), so the next message faults every page in
// again: on a 2-core machine that cut 1 MiB batch transport to about a quarter of raw TCP
// (see docs/wire-format.md). Keeping freed memory in the process avoids it.
#include <cstdint>

namespace moeflow::transport {

// Process-wide: blocks up to 32 MiB come from the heap instead of their own mapping, and freed
// heap memory stays in the process up to `retain_bytes`. Call once at start-up, before threads
// start. Returns false when the C library refused (not glibc, or a value out of range).
bool retain_freed_buffers(uint64_t retain_bytes = uint64_t{512} << 20);

}  // namespace moeflow::transport
