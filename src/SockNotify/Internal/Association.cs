using System.Net.Sockets;

namespace SockNotify.Internal;

/// <summary>
/// A socket associated with a port for overlapped operations (Win32's <c>CreateIoCompletionPort</c> on a socket): its
/// completion key and its started operations, receive side (accept, receive) and send side (connect, send) each in
/// start order. The lists are changed under the association's lock only.
/// </summary>
internal sealed class Association(CompletionPort port, SafeSocketHandle handle, object? completionKey, int slot, uint generation)
    : Registration(port, handle, completionKey, slot, generation)
{
    public OperationList ReceiveSide;
    public OperationList SendSide;

    /// <summary>io_uring: the listener's multishot accept while it is armed.</summary>
    public Operation? MultishotAccept;

    /// <summary>io_uring: connections the multishot accept took while no Accept operation waited.</summary>
    public Queue<int>? AcceptBacklog;

    public bool HasOperations => !ReceiveSide.IsEmpty || !SendSide.IsEmpty;

    public ref OperationList SideOf(Operation operation) =>
        ref operation.IsSendSide ? ref SendSide : ref ReceiveSide;
}

/// <summary>An intrusive doubly linked list of operations, oldest first: O(1) append and removal from anywhere.</summary>
internal struct OperationList
{
    public Operation? Head;
    private Operation? _tail;

    public readonly bool IsEmpty => Head is null;

    public void Add(Operation operation)
    {
        operation.Previous = _tail;
        operation.Next = null;
        if (_tail is null)
        {
            Head = operation;
        }
        else
        {
            _tail.Next = operation;
        }

        _tail = operation;
    }

    public void Remove(Operation operation)
    {
        if (operation.Previous is null)
        {
            Head = operation.Next;
        }
        else
        {
            operation.Previous.Next = operation.Next;
        }

        if (operation.Next is null)
        {
            _tail = operation.Previous;
        }
        else
        {
            operation.Next.Previous = operation.Previous;
        }

        operation.Previous = null;
        operation.Next = null;
    }
}
