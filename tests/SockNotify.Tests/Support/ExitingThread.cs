using System.Runtime.InteropServices;

namespace SockNotify.Tests.Support;

/// <summary>
/// Runs an action on a thread of its own and returns once the operating system's thread is gone, not only the managed
/// one: the kernel ends the io_uring requests of a thread only after its exit, which <see cref="Thread.Join()"/> does
/// not wait for. Elsewhere it joins the thread.
/// </summary>
internal static partial class ExitingThread
{
    public static void Run(Action action)
    {
        int tid = 0;
        Exception? failure = null;
        Thread thread = new(() =>
        {
            tid = OperatingSystem.IsLinux() ? GetTid() : 0;
            try
            {
                action();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        if (failure is not null)
        {
            throw new InvalidOperationException($"The exiting thread failed: {failure.Message}", failure);
        }

        for (int waited = 0; tid != 0 && Directory.Exists($"/proc/self/task/{tid}"); waited++)
        {
            Assert.True(waited < 500, $"thread {tid} did not exit in 5 s");
            Thread.Sleep(10);
        }
    }

    [LibraryImport("libc", EntryPoint = "gettid")]
    private static partial int GetTid();
}
