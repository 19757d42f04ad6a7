package redis

// Counted is what l knows was allowed for scope in the current window, everywhere, and whether
// all of its own allowances are in Redis.
func (l *Limiter) Counted(scope string) (n int64, synced bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.scopes[scope]
	if c == nil {
		return 0, true
	}
	return c.pending + c.synced + c.others, c.pending == 0
}

// Peers is how many limiters l knows to be alive, itself included.
func (l *Limiter) Peers() int64 { return l.peers.Load() }
