package token

import (
	"sync"
	"time"

	"github.com/tokensync/tokensync/internal/oauth"
	"github.com/tokensync/tokensync/internal/providers"
)

// sharedTokens holds, for providers with tokenSharing Shared, the last
// token obtained for each (provider, inputs) pair: the objects that
// resolve to the same provider, client, grant, scopes, audience and
// resources (the same config hash) write it instead of requesting one
// each. A lock per key makes concurrent reconciles of those objects send
// one request. In memory only: after a restart, objects holding a valid
// token keep it (and seed the cache with it), and the first one due
// requests the next.
type sharedTokens struct {
	mu      sync.Mutex
	entries map[string]*sharedToken
	locks   map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	users int
}

// sharedToken is a token as the endpoint answered it, with when it was
// issued: each object derives its own expiry (its defaultLifetime) and
// renewal time (its renewBefore) from it.
type sharedToken struct {
	token    oauth.Token
	issuedAt time.Time
	grant    string
	endpoint string
	// seeded is set for a token read back from a target Secret rather
	// than answered by the endpoint: it has no ID token, scope or refresh
	// fields, so objects with target.data templates do not take it.
	seeded bool
}

// sharedKey identifies the token objects share: the provider (by UID, so
// that a re-created provider starts afresh) and the config hash (the
// effective provider spec and the credentials).
func sharedKey(p *providers.Resolved, configHash string) string {
	return string(p.UID) + "/" + configHash
}

// lock takes key's lock and returns its release.
func (c *sharedTokens) lock(key string) func() {
	c.mu.Lock()
	if c.locks == nil {
		c.locks = map[string]*keyLock{}
	}
	l := c.locks[key]
	if l == nil {
		l = &keyLock{}
		c.locks[key] = l
	}
	l.users++
	c.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		c.mu.Lock()
		if l.users--; l.users == 0 {
			delete(c.locks, key)
		}
		c.mu.Unlock()
	}
}

// get returns the token kept for key, if any, dropping those expired at now.
func (c *sharedTokens) get(key string, now time.Time) *sharedToken {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		exp := e.expiresAt()
		if exp.IsZero() {
			// The endpoint said nothing: each object assumes its own
			// defaultLifetime; a day bounds how long it is kept.
			exp = e.issuedAt.Add(24 * time.Hour)
		}
		if !now.Before(exp) {
			delete(c.entries, k)
		}
	}
	return c.entries[key]
}

// put keeps e for key, unless a token issued later is kept already.
func (c *sharedTokens) put(key string, e *sharedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*sharedToken{}
	}
	if old := c.entries[key]; old != nil && old.issuedAt.After(e.issuedAt) {
		return
	}
	c.entries[key] = e
}

// expiresAt is the expiry the endpoint gave, zero when it said nothing.
func (e *sharedToken) expiresAt() time.Time {
	switch {
	case !e.token.ExpiresAt.IsZero():
		return e.token.ExpiresAt
	case e.token.ExpiresIn > 0:
		return e.issuedAt.Add(e.token.ExpiresIn)
	}
	return time.Time{}
}
