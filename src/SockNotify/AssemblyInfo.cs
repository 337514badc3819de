using System.Runtime.CompilerServices;

// Stack buffers for kernel events are fully written by the kernel or by us before they are read; zeroing them first
// would cost a memset on every dequeue.
[module: SkipLocalsInit]
