using System.Collections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace SockNotify.AspNetCore.Internal;

/// <summary>
/// A connection's feature collection: the transport's own features are the connection itself (no object per feature),
/// and Kestrel's and the application's <c>Set</c> calls (heartbeat, metrics, TLS, ...) go to a dictionary made on the
/// first of them, which takes precedence, so any feature may also be replaced.
/// </summary>
internal sealed class ConnectionFeatures(SockNotifyConnection connection) : IFeatureCollection
{
    private static readonly Type[] OwnFeatureTypes =
    [
        typeof(IConnectionIdFeature), typeof(IConnectionTransportFeature), typeof(IConnectionItemsFeature),
        typeof(IMemoryPoolFeature), typeof(IConnectionLifetimeFeature), typeof(IConnectionEndPointFeature),
        typeof(IConnectionSocketFeature),
    ];

    /// <summary>Features set from outside; a null value hides the connection's own feature of that type.</summary>
    private Dictionary<Type, object?>? _set;
    private int _revision;

    public bool IsReadOnly => false;

    public int Revision => _revision;

    public object? this[Type key]
    {
        get
        {
            ArgumentNullException.ThrowIfNull(key);
            if (_set is not null && _set.TryGetValue(key, out object? feature))
            {
                return feature;
            }

            return IsOwn(key) ? connection : null;
        }
        set
        {
            ArgumentNullException.ThrowIfNull(key);
            if (value is null && !IsOwn(key))
            {
                _set?.Remove(key);
            }
            else
            {
                (_set ??= [])[key] = value;
            }

            _revision++;
        }
    }

    public TFeature? Get<TFeature>() => (TFeature?)this[typeof(TFeature)];

    public void Set<TFeature>(TFeature? instance) => this[typeof(TFeature)] = instance;

    public IEnumerator<KeyValuePair<Type, object>> GetEnumerator()
    {
        foreach (Type own in OwnFeatureTypes)
        {
            if (_set is null || !_set.ContainsKey(own))
            {
                yield return new(own, connection);
            }
        }

        if (_set is not null)
        {
            foreach (KeyValuePair<Type, object?> feature in _set)
            {
                if (feature.Value is not null)
                {
                    yield return new(feature.Key, feature.Value);
                }
            }
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private static bool IsOwn(Type key) => Array.IndexOf(OwnFeatureTypes, key) >= 0;
}
