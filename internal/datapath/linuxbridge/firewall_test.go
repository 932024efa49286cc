package linuxbridge

import (
	"fmt"
	"testing"

	"github.com/monostack/monostack/internal/datapath"
	"github.com/monostack/monostack/internal/datapath/datapathtest"
)

// TestFirewallLarge: the security groups of 1,000 ports on one network go
// in one transaction (maps of that many elements take several netlink
// messages), and a rule change on all of them too.
func TestFirewallLarge(t *testing.T) {
	needRoot(t)
	t.Parallel()
	d := newDatapath(t, datapathtest.NewOwner())
	k := 0
	s := benchStateIn(1000, func() string { k++; return fmt.Sprintf("/nonexistent/%d", k) })
	for i := range 2 {
		if i > 0 {
			for j := range s.Ports {
				s.Ports[j].Rules = append(s.Ports[j].Rules, ingress("udp", 5000+i, 5000+i))
			}
		}
		d.mu.Lock()
		err := d.applyFirewall(s, datapath.Check(s))
		d.mu.Unlock()
		if err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
	}
}
