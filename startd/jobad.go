package startd

import (
	"strings"
	"sync"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
)

// sharedAds keeps the parsed cluster parts of recent claims' job ads (a
// claim request's StaticAt): the claims of one cluster's procs share all
// but a few attributes, which are then parsed once, not once per claim.
// Keyed by the text itself, so a part is only ever reused for the same
// text. Safe for concurrent use; bounded (it starts afresh when full);
// the ads in it are never modified (a job ad chains below one: its own
// attributes go in the child).
type sharedAds struct {
	mu sync.Mutex
	m  map[string]*classad.Ad
}

// sharedAdsMax bounds the cluster parts remembered.
const sharedAdsMax = 256

// parseJobAd parses a claim request's job ad: in two parts when StaticAt
// says where its cluster's part begins (the proc's own part, chained to
// the shared cluster part), else, or when the parts do not parse or name
// an attribute in both (the whole ad's later one would win), whole.
// Either way the ad reads the same.
func (c *sharedAds) parseJobAd(req events.ClaimRequest) (*classad.Ad, error) {
	text, at := req.JobAd, req.StaticAt
	if at < 2 || at >= len(text) || text[at-2:at] != "; " || !strings.HasSuffix(text, " ]") {
		return classad.ParseAd(text)
	}
	static := text[at:]
	c.mu.Lock()
	shared := c.m[static]
	c.mu.Unlock()
	if shared == nil {
		var err error
		if shared, err = classad.ParseAd("[ " + static); err != nil {
			return classad.ParseAd(text)
		}
		c.mu.Lock()
		if c.m == nil || len(c.m) >= sharedAdsMax {
			c.m = map[string]*classad.Ad{}
		}
		c.m[static] = shared
		c.mu.Unlock()
	}
	own, err := classad.ParseAd(text[:at-2] + " ]")
	if err != nil {
		return classad.ParseAd(text)
	}
	for _, name := range own.Names() {
		if shared.Has(name) {
			return classad.ParseAd(text)
		}
	}
	own.SetParent(shared)
	return own, nil
}
