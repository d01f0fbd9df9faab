package classad

import (
	"sync"
	"sync/atomic"
)

// Lazy is an ad built the first time it is read. A queue keeps every ad
// it was ever submitted, and most of them (finished jobs) are never read
// again: building them all when a log is replayed was most of the
// replay's time. Any number of goroutines may read a Lazy at once; it is
// built once, and all of them get the same ad.
type Lazy struct {
	ad    atomic.Pointer[Ad]
	mu    sync.Mutex
	build func() *Ad
}

// NewLazy returns a Lazy that build makes when first read. build must
// return a non-nil ad.
func NewLazy(build func() *Ad) *Lazy { return &Lazy{build: build} }

// LazyOf returns a Lazy that is ad, already built.
func LazyOf(ad *Ad) *Lazy {
	l := &Lazy{}
	l.ad.Store(ad)
	return l
}

// Get returns the ad, building it if no one has yet.
func (l *Lazy) Get() *Ad {
	if ad := l.ad.Load(); ad != nil {
		return ad
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if ad := l.ad.Load(); ad != nil {
		return ad
	}
	ad := l.build()
	l.build = nil
	l.ad.Store(ad)
	return ad
}

// Built reports whether the ad has been built.
func (l *Lazy) Built() bool { return l.ad.Load() != nil }

// String prints the ad (building it).
func (l *Lazy) String() string { return l.Get().String() }
