package recipient

import (
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// CacheOptions size and age the callout cache.
type CacheOptions struct {
	Size     int           // entries of each kind (positive, negative); > 0
	Positive time.Duration // how long "exists" is remembered
	Negative time.Duration // how long "unknown" is remembered
	CatchAll time.Duration // how long a domain's catch-all probe result is remembered
}

// DefaultCacheOptions are the defaults of the [recipient] configuration:
// 100 000 entries, positive 7 days, negative 4 hours, catch-all 24 hours.
var DefaultCacheOptions = CacheOptions{Size: 100_000, Positive: 7 * 24 * time.Hour, Negative: 4 * time.Hour, CatchAll: 24 * time.Hour}

// Cache remembers callout answers, on hashicorp/golang-lru's expirable LRU:
// each kind of answer has its own size bound and age. Only definite answers
// are kept: "can't tell" never is, so a backend that was down is asked
// again at once when it comes back.
//
// A Cache is safe for concurrent use and may be shared by successive
// Checkers (a configuration reload keeps what was learnt). Keys carry the
// backend's address, so answers of one backend never answer for another.
type Cache struct {
	opts     CacheOptions
	pos      *expirable.LRU[string, cached]
	neg      *expirable.LRU[string, cached]
	catchAll *expirable.LRU[string, bool]

	hits, misses atomic.Int64
}

// cached is one remembered answer.
type cached struct {
	reply Reply // the backend's reply to RCPT TO
	at    time.Time
}

// NewCache makes a cache. Each expirable LRU runs a goroutine for the life
// of the process (a limit of golang-lru v2), so make one per set of
// options, not one per reload.
func NewCache(o CacheOptions) *Cache {
	if o.Size <= 0 {
		o.Size = DefaultCacheOptions.Size
	}
	return &Cache{
		opts:     o,
		pos:      expirable.NewLRU[string, cached](o.Size, nil, o.Positive),
		neg:      expirable.NewLRU[string, cached](o.Size, nil, o.Negative),
		catchAll: expirable.NewLRU[string, bool](max(o.Size/100, 1000), nil, o.CatchAll),
	}
}

// Options returns the options the cache was made with.
func (c *Cache) Options() CacheOptions { return c.opts }

// get looks up an address checked at a backend.
func (c *Cache) get(key string) (Status, cached, bool) {
	if e, ok := c.neg.Get(key); ok {
		c.hits.Add(1)
		return Unknown, e, true
	}
	if e, ok := c.pos.Get(key); ok {
		c.hits.Add(1)
		return Exists, e, true
	}
	c.misses.Add(1)
	return Unsure, cached{}, false
}

// put remembers a definite answer; Unsure is not remembered (and forgets
// nothing).
func (c *Cache) put(key string, st Status, rep Reply) {
	e := cached{reply: rep, at: time.Now()}
	switch st {
	case Exists:
		c.neg.Remove(key)
		c.pos.Add(key, e)
	case Unknown:
		c.pos.Remove(key)
		c.neg.Add(key, e)
	}
}

// catchAllState returns what the last probe of a domain at a backend found.
func (c *Cache) catchAllState(key string) (catchAll, known bool) {
	return c.catchAll.Get(key)
}

func (c *Cache) setCatchAll(key string, v bool) { c.catchAll.Add(key, v) }

// Len is the number of positive and negative entries held.
func (c *Cache) Len() (positive, negative int) { return c.pos.Len(), c.neg.Len() }

// Hits and Misses count lookups of addresses since the cache was made.
func (c *Cache) Hits() int64   { return c.hits.Load() }
func (c *Cache) Misses() int64 { return c.misses.Load() }
