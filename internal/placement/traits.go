package placement

import (
	"context"
	"database/sql"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/monostack/monostack/internal/api"
)

// standardClasses are the resource classes placement knows without being
// told (os-resource-classes).
var standardClasses = []string{
	"VCPU", "MEMORY_MB", "DISK_GB", "PCI_DEVICE", "SRIOV_NET_VF", "NUMA_SOCKET", "NUMA_CORE", "NUMA_THREAD",
	"NUMA_MEMORY_MB", "IPV4_ADDRESS", "VGPU", "VGPU_DISPLAY_HEAD", "NET_BW_EGR_KILOBIT_PER_SEC",
	"NET_BW_IGR_KILOBIT_PER_SEC", "PCPU", "MEM_ENCRYPTION_CONTEXT", "FPGA", "PGPU",
	"NET_PACKET_RATE_KILOPACKET_PER_SEC", "NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC", "NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC",
}

// standardTraits are the os-traits names served at /traits (a subset of
// upstream's list: the ones a compute host of this cloud can have, and the
// common hardware and storage traits clients filter on).
var standardTraits = []string{
	"COMPUTE_ACCELERATORS", "COMPUTE_ARCH_AARCH64", "COMPUTE_ARCH_X86_64", "COMPUTE_DEVICE_TAGGING",
	"COMPUTE_EPHEMERAL_ENCRYPTION", "COMPUTE_IMAGE_TYPE_AKI", "COMPUTE_IMAGE_TYPE_AMI", "COMPUTE_IMAGE_TYPE_ARI",
	"COMPUTE_IMAGE_TYPE_ISO", "COMPUTE_IMAGE_TYPE_QCOW2", "COMPUTE_IMAGE_TYPE_RAW", "COMPUTE_IMAGE_TYPE_VHD",
	"COMPUTE_IMAGE_TYPE_VMDK", "COMPUTE_MANAGED_PCI_DEVICE", "COMPUTE_MIGRATE_AUTO_CONVERGE",
	"COMPUTE_NET_ATTACH_INTERFACE", "COMPUTE_NET_ATTACH_INTERFACE_WITH_TAG", "COMPUTE_NET_VIF_MODEL_VIRTIO",
	"COMPUTE_NODE", "COMPUTE_RESCUE_BFV", "COMPUTE_SAME_HOST_COLD_MIGRATE", "COMPUTE_SOCKET_PCI_NUMA_AFFINITY",
	"COMPUTE_STATUS_DISABLED", "COMPUTE_TRUSTED_CERTS", "COMPUTE_VOLUME_ATTACH_WITH_TAG", "COMPUTE_VOLUME_EXTEND",
	"COMPUTE_VOLUME_MULTI_ATTACH", "HW_ARCH_X86_64", "HW_ARCH_AARCH64", "HW_CPU_HYPERTHREADING",
	"HW_CPU_X86_AESNI", "HW_CPU_X86_AVX", "HW_CPU_X86_AVX2", "HW_CPU_X86_AVX512F", "HW_CPU_X86_F16C",
	"HW_CPU_X86_FMA3", "HW_CPU_X86_MMX", "HW_CPU_X86_SSE", "HW_CPU_X86_SSE2", "HW_CPU_X86_SSE3",
	"HW_CPU_X86_SSE41", "HW_CPU_X86_SSE42", "HW_CPU_X86_SSSE3", "HW_CPU_X86_SVM", "HW_CPU_X86_VMX",
	"HW_GPU_API_VULKAN", "HW_NIC_ACCEL_SSL", "HW_NIC_SRIOV", "MISC_SHARES_VIA_AGGREGATE",
	"STORAGE_DISK_HDD", "STORAGE_DISK_SSD",
}

var customName = regexp.MustCompile(`^CUSTOM_[A-Z0-9_]+$`)

func (s *Service) traitExists(ctx context.Context, name string) (bool, error) {
	if contains(standardTraits, name) {
		return true, nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM placement_custom_traits WHERE name=?`, name).Scan(&n)
	return n > 0, err
}

func (s *Service) handleListTraits(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if !v.AtLeast(1, 6) {
		return api.NotFound("The resource could not be found.")
	}
	custom, err := strings_(r.Context(), s.db, `SELECT name FROM placement_custom_traits`)
	if err != nil {
		return err
	}
	all := append(append([]string{}, standardTraits...), custom...)
	q := r.URL.Query()
	if name := q.Get("name"); name != "" {
		var keep func(string) bool
		switch {
		case strings.HasPrefix(name, "in:"):
			set := strings.Split(name[3:], ",")
			keep = func(t string) bool { return contains(set, t) }
		case strings.HasPrefix(name, "startswith:"):
			keep = func(t string) bool { return strings.HasPrefix(t, name[11:]) }
		default:
			return api.BadRequest("Badly formed name parameter. Expected name query string parameter in form: ?name=[in|startswith]:[name1,name2|prefix]. Got: \"%s\"", name)
		}
		all = filter(all, keep)
	}
	if a := q.Get("associated"); a != "" {
		used, err := strings_(r.Context(), s.db, `SELECT DISTINCT trait FROM placement_provider_traits`)
		if err != nil {
			return err
		}
		want := a == "true"
		all = filter(all, func(t string) bool { return contains(used, t) == want })
	}
	sort.Strings(all)
	api.WriteJSON(w, http.StatusOK, map[string]any{"traits": all})
	return nil
}

func filter(l []string, keep func(string) bool) []string {
	out := []string{}
	for _, x := range l {
		if keep(x) {
			out = append(out, x)
		}
	}
	return out
}

func (s *Service) handleShowTrait(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ok, err := s.traitExists(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if !ok || !v.AtLeast(1, 6) {
		return api.NotFound("No such trait(s): %s.", r.PathValue("name"))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) handlePutTrait(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if !v.AtLeast(1, 6) {
		return api.NotFound("The resource could not be found.")
	}
	name := r.PathValue("name")
	if !customName.MatchString(name) {
		return api.BadRequest("The trait is invalid. A valid trait must be no longer than 255 characters, start with the prefix \"CUSTOM_\" and use following characters: \"A\"-\"Z\", \"0\"-\"9\" and \"_\"")
	}
	res, err := s.db.ExecContext(r.Context(), `INSERT OR IGNORE INTO placement_custom_traits(name) VALUES (?)`, name)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/placement/traits/"+name)
	if n, _ := res.RowsAffected(); n == 0 {
		w.WriteHeader(http.StatusNoContent)
	} else {
		w.WriteHeader(http.StatusCreated)
	}
	return nil
}

func (s *Service) handleDeleteTrait(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if !v.AtLeast(1, 6) {
		return api.NotFound("The resource could not be found.")
	}
	name := r.PathValue("name")
	if contains(standardTraits, name) {
		return api.BadRequest("Cannot delete standard trait %s.", name)
	}
	ctx := r.Context()
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM placement_provider_traits WHERE trait=?`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return conflict(codeUndefined, "The trait %s is in use by a resource provider.", name)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM placement_custom_traits WHERE name=?`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return api.NotFound("No such trait(s): %s.", name)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

func classView(name string) map[string]any {
	return map[string]any{"name": name, "links": []any{map[string]any{"rel": "self", "href": "/placement/resource_classes/" + name}}}
}

func (s *Service) handleListClasses(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if !v.AtLeast(1, 2) {
		return api.NotFound("The resource could not be found.")
	}
	custom, err := strings_(r.Context(), s.db, `SELECT name FROM placement_custom_classes ORDER BY name`)
	if err != nil {
		return err
	}
	out := []any{}
	for _, c := range append(append([]string{}, standardClasses...), custom...) {
		out = append(out, classView(c))
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"resource_classes": out})
	return nil
}

func (s *Service) classExists(ctx context.Context, name string) (bool, error) {
	if contains(standardClasses, name) {
		return true, nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM placement_custom_classes WHERE name=?`, name).Scan(&n)
	return n > 0, err
}

func (s *Service) handleShowClass(w http.ResponseWriter, r *http.Request, v api.Version) error {
	name := r.PathValue("name")
	ok, err := s.classExists(r.Context(), name)
	if err != nil {
		return err
	}
	if !ok || !v.AtLeast(1, 2) {
		return api.NotFound("No such resource class %s.", name)
	}
	api.WriteJSON(w, http.StatusOK, classView(name))
	return nil
}

func (s *Service) handleCreateClass(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if !v.AtLeast(1, 2) {
		return api.NotFound("The resource could not be found.")
	}
	var b struct {
		Name string `json:"name"`
	}
	if err := decode(r, &b); err != nil {
		return err
	}
	if !customName.MatchString(b.Name) {
		return api.BadRequest("JSON does not validate: '%s' does not match '^CUSTOM_[A-Z0-9_]+$'", b.Name)
	}
	res, err := s.db.ExecContext(r.Context(), `INSERT OR IGNORE INTO placement_custom_classes(name) VALUES (?)`, b.Name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return conflict(codeDuplicateName, "Conflicting resource class already exists: %s", b.Name)
	}
	w.Header().Set("Location", "/placement/resource_classes/"+b.Name)
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Service) handlePutClass(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if !v.AtLeast(1, 7) {
		return api.Errorf(http.StatusMethodNotAllowed, "The method PUT is not allowed for this resource.")
	}
	name := r.PathValue("name")
	if !customName.MatchString(name) {
		return api.BadRequest("JSON does not validate: '%s' does not match '^CUSTOM_[A-Z0-9_]+$'", name)
	}
	res, err := s.db.ExecContext(r.Context(), `INSERT OR IGNORE INTO placement_custom_classes(name) VALUES (?)`, name)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/placement/resource_classes/"+name)
	if n, _ := res.RowsAffected(); n == 0 {
		w.WriteHeader(http.StatusNoContent)
	} else {
		w.WriteHeader(http.StatusCreated)
	}
	return nil
}

func (s *Service) handleDeleteClass(w http.ResponseWriter, r *http.Request, v api.Version) error {
	name := r.PathValue("name")
	if contains(standardClasses, name) {
		return api.BadRequest("Cannot delete standard resource class %s: Cannot delete standard resource class.", name)
	}
	ctx := r.Context()
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM placement_inventories WHERE resource_class=?`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return conflict(codeUndefined, "Unable to delete resource class %s. Class is in use in inventory.", name)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM placement_custom_classes WHERE name=?`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return api.NotFound("No such resource class %s.", name)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
