using System.Net.Sockets;

namespace SockNotify.Tests.Model;

/// <summary>
/// The reference model of socket state notifications (README, "Semantics and defaults"): a few sockets, each the
/// accepted side of a loopback connection that never sends, with at most one registration; posted packets; and Remove
/// notifications owed. It knows no sockets or ports: the runner tells it what it did and shows it every entry
/// dequeued.
/// <para><b>What it promises of each item.</b> Enable creates (taking the key) or re-arms (keeping the first key);
/// Disable and Remove need a registration (else NotRegistered); every item on a closed socket is SocketClosed.
/// DeregisterAndWait answers as Remove does and queues no Remove notification.</para>
/// <para><b>What may arrive</b> (checked for every entry, <see cref="Observe"/>): a notification only for a live,
/// enabled registration (not after Disable, Remove or close, not a second time from one arming of a OneShot), with
/// the registration's first key, no context, and events that are not empty and lie within its filter's In and Out
/// (reported spuriously or not), Hangup only after the peer's FIN (when asked for) or RST (whatever the filter), Err
/// only after a RST. A Remove notification exactly once per successful Remove, and nothing of its key after the
/// Remove was applied. A post exactly once, intact, in posting order for each dequeuing thread.</para>
/// <para><b>What must arrive</b> before a dequeue step ends (<see cref="BeginSettle"/>, <see cref="Owed"/>): every
/// owed Remove and post; for every enabled Level registration whose condition holds, a notification in every dequeue
/// step (it must re-report); for an Edge registration, one after each change it asks for: its Enable while a
/// condition holds, the peer's data, FIN or RST. The condition of each socket is In while bytes are unread or after
/// the peer's FIN or RST, always Out (it never sends), Hangup after a FIN or RST.</para>
/// </summary>
internal sealed class NotificationModel
{
    private readonly SocketState[] _sockets;
    private readonly Dictionary<object, RegistrationState> _registrations = new(ReferenceEqualityComparer.Instance);
    private readonly List<Post> _posts = [];
    private readonly HashSet<object> _removesOwed = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<int, int> _lastPostByThread = [];
    private readonly HashSet<RegistrationState> _levelOwed = [];

    private readonly Coverage? _coverage;

    public NotificationModel(int sockets, Coverage? coverage = null)
    {
        _sockets = Enumerable.Range(0, sockets).Select(_ => new SocketState()).ToArray();
        _coverage = coverage;
    }

    /// <summary>The key every post carries.</summary>
    public static object PostKey { get; } = new Support.Key("post");

    /// <summary>A posted packet's context: its number, also posted as its byte count.</summary>
    public sealed record Post(int Number);

    public bool IsClosed(int socket) => _sockets[socket].Closed;

    /// <summary>Whether the peer can still send (it has neither shut down nor reset).</summary>
    public bool PeerCanSend(int socket) => !_sockets[socket].PeerFin && !_sockets[socket].PeerReset;

    public bool PeerIsOpen(int socket) => !_sockets[socket].PeerReset;

    public int Unread(int socket) => _sockets[socket].Unread;

    /// <summary>Entries waiting in the port's own queue: posts and Removes. Bounds how long fairness may take.</summary>
    public int Queued => _posts.Count + _removesOwed.Count;

    public int LiveRegistrations => _sockets.Count(s => s.Registration is not null);

    public SocketNotifyResult Enable(int socket, object key, SocketNotifyEvents filter, SocketNotifyTrigger trigger)
    {
        SocketState state = _sockets[socket];
        if (state.Closed)
        {
            return SocketNotifyResult.SocketClosed;
        }

        if (state.Registration is not { } registration)
        {
            registration = new RegistrationState(socket, key);
            _registrations.Add(key, registration);
            state.Registration = registration;
        }

        registration.Filter = filter;
        registration.Trigger = trigger;
        registration.Enabled = true;
        registration.FiredOneShot = false;
        // epoll_ctl re-evaluates readiness at ADD and MOD, so an Edge registration reports what already holds.
        registration.EdgeOwed = Reportable(state, filter);
        return SocketNotifyResult.Success;
    }

    public SocketNotifyResult Disable(int socket)
    {
        SocketState state = _sockets[socket];
        if (state.Closed)
        {
            return SocketNotifyResult.SocketClosed;
        }

        if (state.Registration is not { } registration)
        {
            return SocketNotifyResult.NotRegistered;
        }

        registration.Enabled = false;
        registration.FiredOneShot = false;
        registration.EdgeOwed = SocketNotifyEvents.None;
        return SocketNotifyResult.Success;
    }

    /// <summary>A Remove item, or <see cref="CompletionPort.DeregisterAndWait"/> (<paramref name="notify"/> false), which takes the Remove itself.</summary>
    public SocketNotifyResult Remove(int socket, bool notify = true)
    {
        SocketState state = _sockets[socket];
        if (state.Closed)
        {
            return SocketNotifyResult.SocketClosed;
        }

        if (state.Registration is not { } registration)
        {
            return SocketNotifyResult.NotRegistered;
        }

        End(state);
        if (notify)
        {
            _removesOwed.Add(registration.Key);
        }

        return SocketNotifyResult.Success;
    }

    /// <summary>The socket was closed: its registration ends silently (no Remove).</summary>
    public void Closed(int socket)
    {
        SocketState state = _sockets[socket];
        state.Closed = true;
        End(state);
    }

    public void PeerSent(int socket, int bytes)
    {
        SocketState state = _sockets[socket];
        state.Unread += bytes;
        OweEdge(state, SocketNotifyEvents.In);
    }

    public void PeerShutDown(int socket)
    {
        SocketState state = _sockets[socket];
        state.PeerFin = true;
        OweEdge(state, SocketNotifyEvents.In | SocketNotifyEvents.Hangup);
    }

    public void PeerReset(int socket)
    {
        SocketState state = _sockets[socket];
        state.PeerReset = true;
        OweEdge(state, SocketNotifyEvents.In | SocketNotifyEvents.Hangup);
    }

    public void Drained(int socket) => _sockets[socket].Unread = 0;

    public void Posted(Post post) => _posts.Add(post);

    /// <summary>Starts a dequeue step: from now on, <see cref="Owed"/> lists what must arrive before it ends.</summary>
    public void BeginSettle()
    {
        _levelOwed.Clear();
        _lastPostByThread.Clear();
        foreach (SocketState state in _sockets)
        {
            if (state.Registration is { Enabled: true } registration && registration.IsLevel
                && Reportable(state, registration.Filter) != SocketNotifyEvents.None)
            {
                _levelOwed.Add(registration);
            }
        }
    }

    /// <summary>What must still arrive in this dequeue step, in words; empty when nothing is owed.</summary>
    public List<string> Owed()
    {
        List<string> owed = [];
        owed.AddRange(_levelOwed.Select(r => $"{r.Key} (level, {Reportable(_sockets[r.Socket], r.Filter)})"));
        foreach (SocketState state in _sockets)
        {
            if (state.Registration is { Enabled: true, IsLevel: false } edge && (edge.EdgeOwed & Reportable(state, edge.Filter)) != 0)
            {
                owed.Add($"{edge.Key} (edge, {edge.EdgeOwed & Reportable(state, edge.Filter)})");
            }
        }

        owed.AddRange(_removesOwed.Select(key => $"{key}: Remove"));
        owed.AddRange(_posts.Select(p => $"post {p.Number}"));
        return owed;
    }

    /// <summary>Checks one dequeued entry against what may arrive now, and counts it against what is owed.</summary>
    /// <param name="entry">The entry.</param>
    /// <param name="thread">Which dequeuing thread got it (posts keep their order per thread).</param>
    public void Observe(in CompletionEntry entry, int thread)
    {
        if (entry.Context is Post post)
        {
            ObservePost(entry, post, thread);
            return;
        }

        if (entry.Context is not null || entry.SocketError != SocketError.Success)
        {
            throw new ModelViolation($"A notification carries a context or an error: {Describe(entry)}.");
        }

        if (entry.CompletionKey is null || !_registrations.TryGetValue(entry.CompletionKey, out RegistrationState? registration))
        {
            throw new ModelViolation($"An entry with a key no registration was created with: {Describe(entry)}.");
        }

        if (entry.Events == SocketNotifyEvents.Remove)
        {
            if (!_removesOwed.Remove(registration.Key))
            {
                throw new ModelViolation($"A Remove notification that no Remove owes (a second one?): {Describe(entry)}.");
            }

            _coverage?.Count("Remove notification");

            return;
        }

        SocketState state = _sockets[registration.Socket];
        if (registration.Ended)
        {
            throw new ModelViolation($"A notification after its registration ended ({registration.EndedBy}): {Describe(entry)}.");
        }

        if (!registration.Enabled)
        {
            throw new ModelViolation(registration.FiredOneShot
                ? $"A second notification from one arming of a OneShot registration: {Describe(entry)}."
                : $"A notification of a disabled registration: {Describe(entry)}.");
        }

        SocketNotifyEvents allowed = Allowed(state, registration.Filter);
        if (entry.Events == SocketNotifyEvents.None || (entry.Events & ~allowed) != 0)
        {
            throw new ModelViolation($"Events {entry.Events} where only {allowed} may be reported (filter {registration.Filter}, " +
                $"peer {(state.PeerReset ? "reset" : state.PeerFin ? "shut down" : "open")}): {Describe(entry)}.");
        }

        _coverage?.Count($"notification {(registration.IsLevel ? "Level" : "Edge")}{((registration.Trigger & SocketNotifyTrigger.OneShot) != 0 ? " OneShot" : "")}" +
            $"{(_levelOwed.Contains(registration) || (registration.EdgeOwed & Reportable(state, registration.Filter)) != 0 ? " (owed)" : "")}: {entry.Events}");
        _levelOwed.Remove(registration);
        registration.EdgeOwed = SocketNotifyEvents.None; // The report reflects the whole current state.
        if ((registration.Trigger & SocketNotifyTrigger.OneShot) != 0)
        {
            registration.Enabled = false;
            registration.FiredOneShot = true;
        }
    }

    public static string Describe(in CompletionEntry entry) => entry.Context is null
        ? $"[{entry.CompletionKey}: {entry.Events}]"
        : $"[{entry.CompletionKey}: context {entry.Context}, {entry.BytesTransferred} bytes, {entry.SocketError}]";

    /// <summary>What a registration with <paramref name="filter"/> reports of the socket's current condition.</summary>
    private static SocketNotifyEvents Reportable(SocketState state, SocketNotifyEvents filter)
    {
        SocketNotifyEvents condition = SocketNotifyEvents.Out;
        if (state.Unread > 0 || state.PeerFin || state.PeerReset)
        {
            condition |= SocketNotifyEvents.In;
        }

        if (state.PeerFin || state.PeerReset)
        {
            condition |= SocketNotifyEvents.Hangup;
        }

        SocketNotifyEvents reportable = condition & filter;
        if (state.PeerReset)
        {
            reportable |= SocketNotifyEvents.Hangup; // Closed both ways: Hangup whatever the filter.
        }

        return reportable;
    }

    /// <summary>What may be reported: In and Out of the filter (notifications may be spurious), Hangup and Err only when true.</summary>
    private static SocketNotifyEvents Allowed(SocketState state, SocketNotifyEvents filter)
    {
        SocketNotifyEvents allowed = filter & (SocketNotifyEvents.In | SocketNotifyEvents.Out);
        if ((state.PeerFin && (filter & SocketNotifyEvents.Hangup) != 0) || state.PeerReset)
        {
            allowed |= SocketNotifyEvents.Hangup;
        }

        if (state.PeerReset)
        {
            allowed |= SocketNotifyEvents.Err;
        }

        return allowed;
    }

    private static void OweEdge(SocketState state, SocketNotifyEvents changed)
    {
        if (state.Registration is { Enabled: true, IsLevel: false } edge)
        {
            edge.EdgeOwed |= changed & Reportable(state, edge.Filter);
        }
    }

    private void End(SocketState state)
    {
        if (state.Registration is { } registration)
        {
            registration.Ended = true;
            registration.EndedBy = state.Closed ? "socket closed" : "Remove";
            registration.Enabled = false;
            _levelOwed.Remove(registration);
            state.Registration = null;
        }
    }

    private void ObservePost(in CompletionEntry entry, Post post, int thread)
    {
        int index = _posts.IndexOf(post);
        if (index < 0)
        {
            throw new ModelViolation($"Post {post.Number} delivered twice: {Describe(entry)}.");
        }

        if (!ReferenceEquals(entry.CompletionKey, PostKey) || entry.BytesTransferred != (uint)post.Number || entry.SocketError != SocketError.Success)
        {
            throw new ModelViolation($"Post {post.Number} arrived altered: {Describe(entry)}.");
        }

        if (_lastPostByThread.TryGetValue(thread, out int last) && last > post.Number)
        {
            throw new ModelViolation($"Post {post.Number} reached thread {thread} after post {last}: posts are dequeued in posting order.");
        }

        _lastPostByThread[thread] = post.Number;
        _coverage?.Count("post");
        _posts.RemoveAt(index);
    }

    private sealed class SocketState
    {
        public bool Closed { get; set; }

        public int Unread { get; set; }

        public bool PeerFin { get; set; }

        public bool PeerReset { get; set; }

        public RegistrationState? Registration { get; set; }
    }

    private sealed class RegistrationState(int socket, object key)
    {
        public int Socket { get; } = socket;

        public object Key { get; } = key;

        public SocketNotifyEvents Filter { get; set; }

        public SocketNotifyTrigger Trigger { get; set; }

        public bool IsLevel => (Trigger & SocketNotifyTrigger.Level) != 0;

        public bool Enabled { get; set; }

        public bool FiredOneShot { get; set; }

        public bool Ended { get; set; }

        public string EndedBy { get; set; } = "";

        /// <summary>Edge: the changes since the last report that a report must still follow.</summary>
        public SocketNotifyEvents EdgeOwed { get; set; }
    }
}
