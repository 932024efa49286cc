// Package config holds monostack's settings: defaults, an optional YAML file,
// MONOSTACK_* environment variables and command-line flags, in rising order of
// precedence. It is the only package that reads the environment.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is everything `monostack up` needs to know.
type Config struct {
	DataDir       string        // where the database, keys and files live
	Listen        string        // host:port of the one HTTP listener
	PublicURL     string        // base URL put in the catalog; derived from Listen when empty
	Region        string        // the region endpoints are in
	AdminPassword string        // the admin user's password at bootstrap; generated when empty
	LogLevel      string        // debug, info, warn, error
	TokenTTL      time.Duration // lifetime of a token
	BcryptCost    int           // cost of password hashes
	MaxActiveKeys int           // Fernet keys kept: staged + primary + secondaries
	ConfigFile    string        // the optional YAML file read

	ImageMaxSize    int64 // bytes; 0 is the default (1 TiB)
	ImageCountQuota int   // images per project; 0 is unlimited
	ImageBytesQuota int64 // image bytes per project; 0 is unlimited
	// ImageHashAlgorithm computes images' os_hash_value (Glance's
	// hashing_algorithm); "" is sha512. Checked by the image service.
	ImageHashAlgorithm string

	// KeepDeleted is how long what is kept of deleted servers (their
	// rows and actions) and deleted images (their ids) stays before it
	// is purged; 0 keeps it for good, as upstream does until an operator
	// purges.
	KeepDeleted time.Duration

	PublicCIDR  string // the external network "public"; empty: 203.0.113.0/24
	PrivateCIDR string // demo's network "private"; empty: 198.51.100.0/24
	Datapath    string // "linuxbridge" (real, needs root) or "none" (no agent: ports stay DOWN)

	// Nova's cpu_, ram_ and disk_allocation_ratio: how much of each of
	// the host's CPUs, memory and disk placement lets servers have
	// (16, 1.5 and 1, as upstream). A container does not take its
	// flavor's disk up front (its root is an overlay), so a dense host
	// raises the disk ratio.
	CPUAllocationRatio, RAMAllocationRatio, DiskAllocationRatio float64
}

// Defaults returns the settings used when nothing else is said.
func Defaults() Config {
	return Config{
		DataDir:       "/var/lib/monostack",
		Listen:        "127.0.0.1:8800",
		Region:        "RegionOne",
		LogLevel:      "info",
		TokenTTL:      time.Hour,
		BcryptCost:    12,
		MaxActiveKeys: 3,
		Datapath:      "linuxbridge",
		KeepDeleted:   30 * 24 * time.Hour,

		CPUAllocationRatio:  16,
		RAMAllocationRatio:  1.5,
		DiskAllocationRatio: 1,
	}
}

// bind registers c's fields as flags on fs.
func (c *Config) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the database, keys and stored bytes")
	fs.StringVar(&c.Listen, "listen", c.Listen, "address of the HTTP listener")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "base URL advertised in the catalog (default http://<listen>)")
	fs.StringVar(&c.Region, "region", c.Region, "region name")
	fs.StringVar(&c.AdminPassword, "admin-password", c.AdminPassword, "admin password set at first start (generated when empty)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.DurationVar(&c.TokenTTL, "token-ttl", c.TokenTTL, "token lifetime")
	fs.IntVar(&c.BcryptCost, "bcrypt-cost", c.BcryptCost, "bcrypt cost of password hashes (4-31)")
	fs.IntVar(&c.MaxActiveKeys, "max-active-keys", c.MaxActiveKeys, "Fernet keys kept (at least 3)")
	fs.StringVar(&c.ConfigFile, "config", c.ConfigFile, "optional YAML file whose keys are the flag names")
	fs.StringVar(&c.PublicCIDR, "public-cidr", c.PublicCIDR, "range of the external network public (default 203.0.113.0/24)")
	fs.StringVar(&c.PrivateCIDR, "private-cidr", c.PrivateCIDR, "range of demo's network private (default 198.51.100.0/24)")
	fs.StringVar(&c.Datapath, "datapath", c.Datapath, "linuxbridge (bridges, veths, nftables; needs root) or none")
	fs.Int64Var(&c.ImageMaxSize, "image-max-size", c.ImageMaxSize, "largest image in bytes (0: 1 TiB)")
	fs.IntVar(&c.ImageCountQuota, "image-count-quota", c.ImageCountQuota, "images per project (0: unlimited)")
	fs.Float64Var(&c.CPUAllocationRatio, "cpu-allocation-ratio", c.CPUAllocationRatio, "servers' vCPUs per host CPU that placement allows (Nova's cpu_allocation_ratio)")
	fs.Float64Var(&c.RAMAllocationRatio, "ram-allocation-ratio", c.RAMAllocationRatio, "servers' memory per MB of the host's (Nova's ram_allocation_ratio)")
	fs.Float64Var(&c.DiskAllocationRatio, "disk-allocation-ratio", c.DiskAllocationRatio, "servers' disk per GB of the data dir's filesystem (Nova's disk_allocation_ratio)")
	fs.Int64Var(&c.ImageBytesQuota, "image-bytes-quota", c.ImageBytesQuota, "image bytes stored per project (0: unlimited)")
	fs.StringVar(&c.ImageHashAlgorithm, "image-hash-algorithm", c.ImageHashAlgorithm, "os_hash_algo of new image data (Glance's hashing_algorithm): sha512 (default), sha256, sha384, sha3_512, …")
	fs.DurationVar(&c.KeepDeleted, "keep-deleted", c.KeepDeleted, "how long deleted servers' records and actions and deleted images' ids are kept before they are purged (0: for good)")
}

// Parse reads the settings for a subcommand from args, the environment
// (MONOSTACK_DATA_DIR for --data-dir, and so on) and the optional file.
// extra registers the subcommand's own flags.
func Parse(name string, args []string, getenv func(string) string, extra func(*flag.FlagSet)) (Config, []string, error) {
	c := Defaults()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	c.bind(fs)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return c, nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	// Environment, for flags not given on the command line.
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		if v := getenv("MONOSTACK_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("MONOSTACK_%s: %w", strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_")), err))
			}
			set[f.Name] = true
		}
	})
	// The file, for what neither said.
	if c.ConfigFile != "" {
		b, err := os.ReadFile(c.ConfigFile)
		if err != nil {
			return c, nil, fmt.Errorf("config file: %w", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			return c, nil, fmt.Errorf("config file %s: %w", c.ConfigFile, err)
		}
		for k, v := range m {
			f := fs.Lookup(k)
			if f == nil {
				errs = append(errs, fmt.Errorf("config file %s: unknown setting %q", c.ConfigFile, k))
				continue
			}
			if set[k] {
				continue
			}
			if err := f.Value.Set(fmt.Sprint(v)); err != nil {
				errs = append(errs, fmt.Errorf("config file %s: %s: %w", c.ConfigFile, k, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, nil, err
	}
	return c, fs.Args(), c.Validate()
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data-dir must not be empty"))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: %w", c.Listen, err))
	}
	if c.BcryptCost < 4 || c.BcryptCost > 31 {
		errs = append(errs, fmt.Errorf("bcrypt-cost %d: must be 4..31", c.BcryptCost))
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"cpu", c.CPUAllocationRatio}, {"ram", c.RAMAllocationRatio}, {"disk", c.DiskAllocationRatio}} {
		if !(r.v > 0 && r.v <= 10000) {
			errs = append(errs, fmt.Errorf("%s-allocation-ratio %v: must be above 0 (and at most 10000)", r.name, r.v))
		}
	}
	if c.MaxActiveKeys < 3 {
		errs = append(errs, fmt.Errorf("max-active-keys %d: must be at least 3", c.MaxActiveKeys))
	}
	if c.TokenTTL < time.Minute {
		errs = append(errs, fmt.Errorf("token-ttl %s: must be at least a minute", c.TokenTTL))
	}
	if c.KeepDeleted < 0 {
		errs = append(errs, fmt.Errorf("keep-deleted %s: must not be negative (0 keeps for good)", c.KeepDeleted))
	}
	if c.ImageMaxSize < 0 || c.ImageCountQuota < 0 || c.ImageBytesQuota < 0 {
		errs = append(errs, errors.New("image sizes and quotas must not be negative"))
	}
	// The networks' ranges, the defaults (network.DefaultPublicCIDR and
	// DefaultPrivateCIDR) where not given.
	var ranges []netip.Prefix
	for _, p := range []struct{ name, v, def string }{
		{"public-cidr", c.PublicCIDR, "203.0.113.0/24"}, {"private-cidr", c.PrivateCIDR, "198.51.100.0/24"}} {
		if p.v == "" {
			ranges = append(ranges, netip.MustParsePrefix(p.def))
			continue
		}
		pfx, err := netip.ParsePrefix(p.v)
		if err != nil || !pfx.Addr().Is4() || pfx.Bits() > 28 || pfx.Masked() != pfx {
			errs = append(errs, fmt.Errorf("%s %q: must be an IPv4 network of /28 or larger, like 203.0.113.0/24", p.name, p.v))
			continue
		}
		ranges = append(ranges, pfx)
	}
	if len(ranges) == 2 && ranges[0].Overlaps(ranges[1]) {
		// Neutron would refuse the router between them half-way through
		// the first start.
		errs = append(errs, fmt.Errorf("public-cidr %s and private-cidr %s overlap", ranges[0], ranges[1]))
	}
	if c.Datapath != "linuxbridge" && c.Datapath != "none" {
		errs = append(errs, fmt.Errorf("datapath %q: must be linuxbridge or none", c.Datapath))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log-level %q: must be debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}

// BaseURL is the URL clients reach the listener at, without a trailing slash.
func (c *Config) BaseURL() string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	host, port, _ := net.SplitHostPort(c.Listen)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
