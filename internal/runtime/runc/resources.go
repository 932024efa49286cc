package runc

import (
	"context"
	"fmt"
	"strconv"

	"github.com/monostack/monostack/internal/runtime"
)

// SetResources updates a live container's cgroups with `runc update` and
// then the record, which later boots (and Recover) build the container
// from. Create compares specs without Resources, so re-creating an
// existing container with its first spec keeps the new limits.
func (r *Runtime) SetResources(ctx context.Context, id string, res runtime.Resources) error {
	defer r.lock(id)()
	rec, st, err := r.current(ctx, id)
	if err != nil {
		return err
	}
	spec := rec.Spec
	spec.Resources = res
	if err := spec.Validate(); err != nil {
		return err
	}
	if st.Status != runtime.Stopped {
		lr := r.resources(res)
		args := []string{"update", "--pids-limit=" + strconv.FormatInt(*lr.Pids.Limit, 10)}
		// 0 means unlimited: -1 for runc.
		mem, swap := "-1", "-1"
		if lr.Memory != nil {
			mem = strconv.FormatInt(*lr.Memory.Limit, 10)
			if lr.Memory.Swap != nil {
				swap = strconv.FormatInt(*lr.Memory.Swap, 10)
			}
		}
		if !r.swap {
			swap = ""
		}
		// Raising memory+swap must come before raising memory, lowering
		// after; runc sets them in the right order when given together.
		// (flag=value: "-1" would be taken for a flag.)
		args = append(args, "--memory="+mem)
		if swap != "" {
			args = append(args, "--memory-swap="+swap)
		}
		quota, shares := "-1", "1024"
		if lr.CPU != nil {
			quota, shares = strconv.FormatInt(*lr.CPU.Quota, 10), strconv.FormatUint(*lr.CPU.Shares, 10)
		}
		args = append(args, "--cpu-quota="+quota, "--cpu-period="+strconv.Itoa(cfsPeriod), "--cpu-share="+shares, id)
		if out, err := r.runcCmd(ctx, args...); err != nil {
			return fmt.Errorf("%w: updating the limits of container %s: %s", runtime.ErrInvalid, id, runcMessage(out))
		}
	}
	rec.Spec.Resources = res
	return r.writeRecord(rec)
}
