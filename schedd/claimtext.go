package schedd

import (
	"sync"

	"github.com/vmpool/vmpool/classad"
)

// claimTexts keeps the submitted attributes of recently claimed clusters
// printed (Job.adText), so that the claim requests of a cluster's procs
// print them once: a queue 100000 cluster's procs share one submitted ad.
// Safe for concurrent use; bounded (it starts afresh when full).
type claimTexts struct {
	mu sync.Mutex
	m  map[*classad.Ad]*staticText
}

// claimTextsMax bounds the clusters remembered: single-job clusters gain
// nothing from it, and each entry holds a cluster's printed ad.
const claimTextsMax = 1024

// adText is j.AdText(schedd), the cluster's printed attributes taken from
// (or kept in) the cache, and where they begin in it (the claim request's
// StaticAt; 0 for a proc with submitted attributes of its own, whose
// shared part is its alone). Called under a View.
func (c *claimTexts) adText(j *Job, schedd string) (string, int) {
	if j.OwnLazy != nil {
		return j.AdText(schedd), 0 // its own submitted ad: nothing to share
	}
	ad := j.Cluster.Ad()
	c.mu.Lock()
	st := c.m[ad]
	c.mu.Unlock()
	if st == nil {
		st = newStaticText(ad)
		c.mu.Lock()
		if c.m == nil || len(c.m) >= claimTextsMax {
			c.m = map[*classad.Ad]*staticText{}
		}
		c.m[ad] = st
		c.mu.Unlock()
	}
	return j.adText(schedd, st)
}
