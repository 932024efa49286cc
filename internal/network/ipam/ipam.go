// Package ipam is the address bookkeeping of the network service: subnet
// CIDR and allocation-pool arithmetic, and the allocation of addresses to
// ports inside the caller's write transaction.
//
// Allocations live in the network service's ip_allocations table:
//
//	ip_allocations(subnet_id, ip_address, ip_key, port_id, network_id,
//	               PRIMARY KEY (subnet_id, ip_address))
//
// ip_key is the address as fixed-width hex (Key), so that the database
// orders a subnet's addresses numerically.
//
// The primary key is the backstop that makes a double allocation
// impossible: Allocate picks a free address of the subnet's pools as seen
// by its transaction, and when a concurrent transaction took the same
// address first (possible on databases whose writers run side by side),
// the insert fails and Allocate reports ErrRace so the caller can retry
// its whole transaction. On SQLite, writers are serialised and the race
// cannot happen.
package ipam

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"slices"

	"github.com/monostack/monostack/internal/store"
)

// Range is an inclusive range of addresses of one family.
type Range struct {
	Start, End netip.Addr
}

func (r Range) String() string { return r.Start.String() + "-" + r.End.String() }

// Contains reports whether a is in the range.
func (r Range) Contains(a netip.Addr) bool {
	return a.BitLen() == r.Start.BitLen() && r.Start.Compare(a) <= 0 && a.Compare(r.End) <= 0
}

// Overlaps reports whether the two ranges share an address.
func (r Range) Overlaps(o Range) bool {
	return r.Start.BitLen() == o.Start.BitLen() && r.Start.Compare(o.End) <= 0 && o.Start.Compare(r.End) <= 0
}

// Size is the number of addresses in the range, saturated at 2^62.
func (r Range) Size() uint64 {
	a := new(big.Int).SetBytes(r.Start.AsSlice())
	b := new(big.Int).SetBytes(r.End.AsSlice())
	d := new(big.Int).Sub(b, a)
	if d.Sign() < 0 {
		return 0
	}
	d.Add(d, big.NewInt(1))
	if !d.IsUint64() || d.Uint64() > 1<<62 {
		return 1 << 62
	}
	return d.Uint64()
}

// Errors. Each carries what the network service needs for the upstream
// message; match them with errors.As.
type (
	// InvalidPoolError: a pool whose ends are not addresses of the
	// subnet's family or are out of order (InvalidAllocationPool).
	InvalidPoolError struct{ Pool string }
	// OutOfBoundsPoolError: a pool that spans beyond the subnet's usable
	// addresses (OutOfBoundsAllocationPool).
	OutOfBoundsPoolError struct {
		Pool string
		CIDR netip.Prefix
	}
	// OverlappingPoolsError: two pools share addresses (OverlappingAllocationPools).
	OverlappingPoolsError struct {
		A, B Range
		CIDR netip.Prefix
	}
	// GatewayInPoolError: the gateway is inside a pool (GatewayConflictWithAllocationPools).
	GatewayInPoolError struct {
		Gateway netip.Addr
		Pool    Range
	}
	// AllocatedError: the address is taken in that subnet (IpAddressAlreadyAllocated).
	AllocatedError struct {
		Addr     netip.Addr
		SubnetID string
	}
	// ExhaustedError: no free address is left in the subnet's pools.
	ExhaustedError struct{ SubnetID string }
)

func (e *InvalidPoolError) Error() string { return fmt.Sprintf("invalid allocation pool %s", e.Pool) }
func (e *OutOfBoundsPoolError) Error() string {
	return fmt.Sprintf("allocation pool %s spans beyond %s", e.Pool, e.CIDR)
}
func (e *OverlappingPoolsError) Error() string {
	return fmt.Sprintf("allocation pools %s and %s overlap in %s", e.A, e.B, e.CIDR)
}
func (e *GatewayInPoolError) Error() string {
	return fmt.Sprintf("gateway %s is in allocation pool %s", e.Gateway, e.Pool)
}
func (e *AllocatedError) Error() string {
	return fmt.Sprintf("%s is already allocated in subnet %s", e.Addr, e.SubnetID)
}
func (e *ExhaustedError) Error() string { return "no free address in subnet " + e.SubnetID }

// ErrRace: the address chosen was taken by a concurrent transaction; the
// caller's transaction is spoiled and must be retried from the start.
var ErrRace = errors.New("ipam: address taken concurrently; retry the transaction")

// Usable is the range of a subnet's addresses that may be handed out:
// for IPv4 without the network and broadcast addresses (unless the prefix
// is /31 or /32), for IPv6 without the subnet-router anycast address.
func Usable(cidr netip.Prefix) Range {
	cidr = cidr.Masked()
	first, last := cidr.Addr(), Last(cidr)
	if cidr.Addr().Is4() {
		if cidr.Bits() <= 30 {
			return Range{first.Next(), last.Prev()}
		}
		return Range{first, last}
	}
	if cidr.Bits() == 128 {
		return Range{first, last}
	}
	return Range{first.Next(), last}
}

// Last is the highest address of a prefix.
func Last(p netip.Prefix) netip.Addr {
	p = p.Masked()
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// DefaultGateway is the first usable address of a subnet, as upstream
// chooses when none is given.
func DefaultGateway(cidr netip.Prefix) netip.Addr {
	cidr = cidr.Masked()
	if cidr.Addr().Is4() && cidr.Bits() >= 31 || cidr.Addr().Is6() && cidr.Bits() == 128 {
		return cidr.Addr()
	}
	return cidr.Addr().Next()
}

// DefaultPools are the usable addresses of cidr without the gateway.
func DefaultPools(cidr netip.Prefix, gateway netip.Addr) []Range {
	u := Usable(cidr)
	if !gateway.IsValid() || !u.Contains(gateway) {
		return []Range{u}
	}
	var out []Range
	if gateway != u.Start {
		out = append(out, Range{u.Start, gateway.Prev()})
	}
	if gateway != u.End {
		out = append(out, Range{gateway.Next(), u.End})
	}
	return out
}

// ValidatePools checks pools against the subnet: each within the usable
// addresses and in order, no two overlapping, the gateway (if valid) in none.
func ValidatePools(cidr netip.Prefix, pools []Range, gateway netip.Addr) error {
	u := Usable(cidr)
	for _, p := range pools {
		if !p.Start.IsValid() || !p.End.IsValid() || p.Start.BitLen() != cidr.Addr().BitLen() ||
			p.End.BitLen() != cidr.Addr().BitLen() || p.End.Less(p.Start) {
			return &InvalidPoolError{Pool: p.String()}
		}
		if p.Start.Less(u.Start) || u.End.Less(p.End) {
			return &OutOfBoundsPoolError{Pool: p.String(), CIDR: cidr}
		}
	}
	for i := range pools {
		for j := i + 1; j < len(pools); j++ {
			if pools[i].Overlaps(pools[j]) {
				return &OverlappingPoolsError{A: pools[i], B: pools[j], CIDR: cidr}
			}
		}
	}
	if gateway.IsValid() {
		for _, p := range pools {
			if p.Contains(gateway) {
				return &GatewayInPoolError{Gateway: gateway, Pool: p}
			}
		}
	}
	return nil
}

// ValidForSubnet reports whether addr may be given to a port on the subnet:
// inside it and not its network address (nor, for IPv4, its broadcast
// address). Router ports may use IPv6's subnet-router anycast address.
func ValidForSubnet(cidr netip.Prefix, addr netip.Addr, routerPort bool) bool {
	cidr = cidr.Masked()
	if !cidr.Contains(addr) {
		return false
	}
	if addr.Is4() {
		if cidr.Bits() >= 31 {
			return true
		}
		return addr != cidr.Addr() && addr != Last(cidr)
	}
	return addr != cidr.Addr() || routerPort || cidr.Bits() == 128
}

// GatewayValid reports whether gw may be the gateway of cidr: inside it,
// and for IPv4 neither its network nor broadcast address.
func GatewayValid(cidr netip.Prefix, gw netip.Addr) bool {
	cidr = cidr.Masked()
	if !cidr.Contains(gw) {
		return false
	}
	if gw.Is4() && cidr.Bits() < 31 {
		return gw != cidr.Addr() && gw != Last(cidr)
	}
	return true
}

// EUI64 is the SLAAC address of mac in a /64 prefix.
func EUI64(prefix netip.Prefix, mac net.HardwareAddr) (netip.Addr, error) {
	if !prefix.Addr().Is6() || prefix.Bits() > 64 || len(mac) != 6 {
		return netip.Addr{}, fmt.Errorf("EUI-64 needs an IPv6 /64 and a 48-bit MAC")
	}
	b := prefix.Masked().Addr().As16()
	b[8] = mac[0] ^ 0x02
	b[9], b[10] = mac[1], mac[2]
	b[11], b[12] = 0xff, 0xfe
	b[13], b[14], b[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(b), nil
}

// Querier is what the allocation functions need of a transaction.
type Querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

// Allocated returns the addresses allocated in a subnet.
func Allocated(ctx context.Context, q Querier, subnetID string) (map[netip.Addr]bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT ip_address FROM ip_allocations WHERE subnet_id=?`, subnetID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[netip.Addr]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		if a, err := netip.ParseAddr(s); err == nil {
			out[a] = true
		}
	}
	return out, rows.Err()
}

// Allocation is one address held by a port.
type Allocation struct {
	SubnetID, NetworkID, PortID string
	Addr                        netip.Addr
}

// Key is an address as fixed-width hex: 8 digits for IPv4, 32 for IPv6,
// so that keys of one family sort as the addresses do.
func Key(a netip.Addr) string { return hex.EncodeToString(a.AsSlice()) }

// Reserve records a specific address for a port. An address already held
// is an *AllocatedError.
func Reserve(ctx context.Context, q Querier, a Allocation) error {
	_, err := q.ExecContext(ctx, `INSERT INTO ip_allocations (subnet_id, ip_address, ip_key, port_id, network_id) VALUES (?,?,?,?,?)`,
		a.SubnetID, a.Addr.String(), Key(a.Addr), a.PortID, a.NetworkID)
	if errors.Is(store.Translate(err), store.ErrConflict) {
		return &AllocatedError{Addr: a.Addr, SubnetID: a.SubnetID}
	}
	return err
}

// Allocate gives the port a free address of the subnet's pools: the one
// after the highest allocated in the first pool that has room above it, or
// when every pool is used up to its end, the lowest free one. Addresses
// are thus handed out in order and a freed one is handed out again once
// the pool's end is reached. A full subnet is an *ExhaustedError; a lost
// race is ErrRace.
func Allocate(ctx context.Context, q Querier, subnetID, networkID, portID string, pools []Range) (netip.Addr, error) {
	ps := slices.Clone(pools)
	slices.SortFunc(ps, func(a, b Range) int { return a.Start.Compare(b.Start) })
	pick := netip.Addr{}
	for _, p := range ps {
		top, err := highest(ctx, q, subnetID, p)
		if err != nil {
			return netip.Addr{}, err
		}
		switch {
		case !top.IsValid():
			pick = p.Start
		case top.Less(p.End):
			pick = top.Next()
		default:
			continue
		}
		break
	}
	if !pick.IsValid() {
		used, err := Allocated(ctx, q, subnetID)
		if err != nil {
			return netip.Addr{}, err
		}
	scan:
		for _, p := range ps {
			for a := p.Start; a.IsValid() && a.Compare(p.End) <= 0; a = a.Next() {
				if !used[a] {
					pick = a
					break scan
				}
			}
		}
	}
	if !pick.IsValid() {
		return netip.Addr{}, &ExhaustedError{SubnetID: subnetID}
	}
	err := Reserve(ctx, q, Allocation{SubnetID: subnetID, NetworkID: networkID, PortID: portID, Addr: pick})
	var ae *AllocatedError
	if errors.As(err, &ae) {
		return netip.Addr{}, ErrRace
	}
	return pick, err
}

// highest is the highest allocated address of a pool (invalid if none).
func highest(ctx context.Context, q Querier, subnetID string, p Range) (netip.Addr, error) {
	rows, err := q.QueryContext(ctx, `SELECT ip_address FROM ip_allocations WHERE subnet_id=? AND ip_key BETWEEN ? AND ?
		ORDER BY ip_key DESC LIMIT 1`, subnetID, Key(p.Start), Key(p.End))
	if err != nil {
		return netip.Addr{}, err
	}
	defer rows.Close()
	var top netip.Addr
	if rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return netip.Addr{}, err
		}
		top, _ = netip.ParseAddr(s)
	}
	return top, rows.Err()
}

// ReleasePort frees every address a port holds.
func ReleasePort(ctx context.Context, q Querier, portID string) error {
	_, err := q.ExecContext(ctx, `DELETE FROM ip_allocations WHERE port_id=?`, portID)
	return err
}

// Release frees one address of a port.
func Release(ctx context.Context, q Querier, portID, subnetID string, addr netip.Addr) error {
	_, err := q.ExecContext(ctx, `DELETE FROM ip_allocations WHERE port_id=? AND subnet_id=? AND ip_address=?`,
		portID, subnetID, addr.String())
	return err
}

// Count is how many addresses of the subnet are allocated.
func Count(ctx context.Context, q Querier, subnetID string) (int, error) {
	rows, err := q.QueryContext(ctx, `SELECT count(*) FROM ip_allocations WHERE subnet_id=?`, subnetID)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	if rows.Next() {
		err = rows.Scan(&n)
	}
	if err == nil {
		err = rows.Err()
	}
	return n, err
}
