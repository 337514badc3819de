using System.Net.Sockets;

namespace SockNotify.Internal;

/// <summary>
/// A socket associated with a port for overlapped operations (Win32's <c>CreateIoCompletionPort</c> on a socket): its
/// completion key and its started operations, receive side (accept, receive) and send side (connect, send) each in
/// start order. The lists, and <see cref="EngineState"/>, are changed under the association's lock only.
/// </summary>
internal sealed class Association(PortCore port, SafeSocketHandle handle, object? completionKey, SlotToken token)
    : Registration(port, handle, completionKey, token)
{
    public OperationList ReceiveSide;
    public OperationList SendSide;

    /// <summary>
    /// What the port's engine keeps for this socket (mio's <c>IoSourceState</c>): its own type, or null when it keeps
    /// nothing. Shared code never looks inside.
    /// </summary>
    public object? EngineState;

    public ref OperationList SideOf(Operation operation) =>
        ref operation.IsSendSide ? ref SendSide : ref ReceiveSide;
}

/// <summary>An intrusive doubly linked list of operations, oldest first: O(1) append and removal from anywhere.</summary>
internal struct OperationList
{
    public Operation? Head;
    private Operation? _tail;


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
