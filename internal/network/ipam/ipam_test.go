package ipam

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"

	"github.com/monostack/monostack/internal/store"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }
func rng(a, b string) Range     { return Range{ip(a), ip(b)} }

func TestUsableAndDefaults(t *testing.T) {
	cases := []struct {
		cidr, gw string
		usable   Range
		pools    []Range
	}{
		{"10.0.0.0/24", "10.0.0.1", rng("10.0.0.1", "10.0.0.254"), []Range{rng("10.0.0.2", "10.0.0.254")}},
		{"10.0.0.0/24", "10.0.0.254", rng("10.0.0.1", "10.0.0.254"), []Range{rng("10.0.0.1", "10.0.0.253")}},
		{"10.0.0.0/24", "10.0.0.100", rng("10.0.0.1", "10.0.0.254"), []Range{rng("10.0.0.1", "10.0.0.99"), rng("10.0.0.101", "10.0.0.254")}},
		{"10.0.0.0/24", "", rng("10.0.0.1", "10.0.0.254"), []Range{rng("10.0.0.1", "10.0.0.254")}},
		{"10.0.0.0/31", "", rng("10.0.0.0", "10.0.0.1"), []Range{rng("10.0.0.0", "10.0.0.1")}},
		{"2001:db8::/64", "2001:db8::1", rng("2001:db8::1", "2001:db8::ffff:ffff:ffff:ffff"), []Range{rng("2001:db8::2", "2001:db8::ffff:ffff:ffff:ffff")}},
	}
	for _, c := range cases {
		var gw netip.Addr
		if c.gw != "" {
			gw = ip(c.gw)
		}
		if u := Usable(pfx(c.cidr)); u != c.usable {
			t.Errorf("%s usable %v, want %v", c.cidr, u, c.usable)
		}
		got := DefaultPools(pfx(c.cidr), gw)
		if len(got) != len(c.pools) {
			t.Errorf("%s gw %s: pools %v, want %v", c.cidr, c.gw, got, c.pools)
			continue
		}
		for i := range got {
			if got[i] != c.pools[i] {
				t.Errorf("%s gw %s: pools %v, want %v", c.cidr, c.gw, got, c.pools)
			}
		}
	}
	if g := DefaultGateway(pfx("192.168.5.0/24")); g != ip("192.168.5.1") {
		t.Errorf("default gateway %s", g)
	}
	if l := Last(pfx("10.1.0.0/16")); l != ip("10.1.255.255") {
		t.Errorf("last %s", l)
	}
	if n := rng("10.0.0.2", "10.0.0.62").Size(); n != 61 {
		t.Errorf("size %d", n)
	}
}

func TestValidatePools(t *testing.T) {
	cidr := pfx("10.0.0.0/24")
	cases := []struct {
		pools []Range
		gw    string
		want  any
	}{
		{[]Range{rng("10.0.0.10", "10.0.0.20")}, "10.0.0.1", nil},
		{[]Range{rng("10.0.0.20", "10.0.0.10")}, "10.0.0.1", &InvalidPoolError{}},
		{[]Range{rng("10.0.0.10", "2001:db8::1")}, "10.0.0.1", &InvalidPoolError{}},
		{[]Range{rng("10.0.0.0", "10.0.0.20")}, "", &OutOfBoundsPoolError{}},
		{[]Range{rng("10.0.0.10", "10.0.1.20")}, "", &OutOfBoundsPoolError{}},
		{[]Range{rng("10.0.0.10", "10.0.0.255")}, "", &OutOfBoundsPoolError{}},
		{[]Range{rng("10.0.0.10", "10.0.0.20"), rng("10.0.0.20", "10.0.0.30")}, "", &OverlappingPoolsError{}},
		{[]Range{rng("10.0.0.1", "10.0.0.20")}, "10.0.0.5", &GatewayInPoolError{}},
	}
	for i, c := range cases {
		var gw netip.Addr
		if c.gw != "" {
			gw = ip(c.gw)
		}
		err := ValidatePools(cidr, c.pools, gw)
		switch want := c.want.(type) {
		case nil:
			if err != nil {
				t.Errorf("%d: %v", i, err)
			}
		case *InvalidPoolError:
			if !errors.As(err, &want) {
				t.Errorf("%d: %v, want InvalidPoolError", i, err)
			}
		case *OutOfBoundsPoolError:
			if !errors.As(err, &want) {
				t.Errorf("%d: %v, want OutOfBoundsPoolError", i, err)
			}
		case *OverlappingPoolsError:
			if !errors.As(err, &want) {
				t.Errorf("%d: %v, want OverlappingPoolsError", i, err)
			}
		case *GatewayInPoolError:
			if !errors.As(err, &want) {
				t.Errorf("%d: %v, want GatewayInPoolError", i, err)
			}
		}
	}
}

func TestValidForSubnetAndGateway(t *testing.T) {
	c := pfx("10.0.0.0/24")
	for _, x := range []struct {
		ip   string
		want bool
	}{{"10.0.0.0", false}, {"10.0.0.255", false}, {"10.0.0.7", true}, {"10.0.1.7", false}, {"2001:db8::1", false}} {
		if got := ValidForSubnet(c, ip(x.ip), false); got != x.want {
			t.Errorf("%s: %v", x.ip, got)
		}
	}
	if ValidForSubnet(pfx("2001:db8::/64"), ip("2001:db8::"), false) || !ValidForSubnet(pfx("2001:db8::/64"), ip("2001:db8::"), true) {
		t.Error("IPv6 subnet-router anycast")
	}
	if GatewayValid(c, ip("10.0.0.0")) || GatewayValid(c, ip("10.0.0.255")) || GatewayValid(c, ip("10.0.1.1")) || !GatewayValid(c, ip("10.0.0.254")) {
		t.Error("gateway validity")
	}
}

func TestEUI64(t *testing.T) {
	mac, _ := net.ParseMAC("fa:16:3e:2e:6f:65")
	a, err := EUI64(pfx("2001:db8::/64"), mac)
	if err != nil || a != ip("2001:db8::f816:3eff:fe2e:6f65") {
		t.Fatalf("%s %v", a, err)
	}
	if _, err := EUI64(pfx("10.0.0.0/24"), mac); err == nil {
		t.Fatal("EUI-64 in IPv4")
	}
}

// testDB is a SQLite database with the ip_allocations table.
func testDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "ipam.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE ip_allocations (subnet_id TEXT NOT NULL, ip_address TEXT NOT NULL, ip_key TEXT NOT NULL,
		port_id TEXT NOT NULL, network_id TEXT NOT NULL, PRIMARY KEY (subnet_id, ip_address))`); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestAllocateNeverTwice(t *testing.T) {
	db := testDB(t)
	ctx := context.Background()
	pools := []Range{rng("10.0.0.2", "10.0.0.30")}
	var mu sync.Mutex
	got := map[netip.Addr]int{}
	exhausted := 0
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var a netip.Addr
			err := db.Tx(ctx, func(tx *sql.Tx) error {
				var err error
				a, err = Allocate(ctx, tx, "s1", "n1", "p"+string(rune('A'+i)), pools)
				return err
			})
			mu.Lock()
			defer mu.Unlock()
			var ex *ExhaustedError
			switch {
			case errors.As(err, &ex):
				exhausted++
			case err != nil:
				t.Error(err)
			default:
				got[a]++
			}
		}()
	}
	wg.Wait()
	if len(got) != 29 || exhausted != 11 {
		t.Fatalf("%d addresses, %d exhausted", len(got), exhausted)
	}
	for a, n := range got {
		if n != 1 || !pools[0].Contains(a) {
			t.Errorf("%s given %d times", a, n)
		}
	}
	// A specific address already held is refused; released, it is handed
	// out again (the pool's end being reached, the lowest free one).
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		return Reserve(ctx, tx, Allocation{SubnetID: "s1", NetworkID: "n1", PortID: "x", Addr: ip("10.0.0.2")})
	})
	var al *AllocatedError
	if !errors.As(err, &al) {
		t.Fatalf("reserve taken: %v", err)
	}
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`DELETE FROM ip_allocations WHERE ip_address='10.0.0.2'`); err != nil {
			return err
		}
		a, err := Allocate(ctx, tx, "s1", "n1", "y", pools)
		if err == nil && a != ip("10.0.0.2") {
			t.Errorf("freed address not reused first: %s", a)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
