package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/monostack/monostack/internal/pattern"
)

// The "image-upload" benchmark: one image of --image-mib MiB uploaded
// (PUT /v2/images/{id}/file, raw/bare, Content-Length given) and
// downloaded (GET …/file) through the Image API of a monostack started
// here, imageRounds times, with the monostack's memory watched:
//
//   - before each transfer the process's peak RSS is reset (writing 5 to
//     /proc/<pid>/clear_refs), then VmRSS is sampled every rssEvery while
//     it runs, and VmHWM read at the end: the peak of the transfer alone;
//   - the client sends bytes cycling through a random block (generated,
//     never held whole) and reads the download into a 1 MiB buffer;
//   - each round also writes as many bytes to a file in the data dir's
//     file system, 1 MiB at a time then fsync (what the upload does with
//     them once hashed), for the disk's speed at that moment;
//   - each image is deleted after its round.
//
// The rates are MiB/s ("MB/s" as elsewhere in the table) of one transfer
// at a time, request to last byte; the upload's ends when the 204 comes,
// after the image's fsync and checks.
const (
	imageRounds = 3
	rssEvery    = 10 * time.Millisecond
)

// memWatch samples a process's VmRSS until stopped, after resetting its
// VmHWM.
type memWatch struct {
	pid      int
	reset    bool // VmHWM was reset: it is the peak of the watch
	before   int64
	maxRSS   int64
	stop     chan struct{}
	done     chan struct{}
	hwm, end int64
}

func watchMem(pid int) *memWatch {
	w := &memWatch{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	w.reset = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
	w.before, _, _ = procStatus(pid)
	w.maxRSS = w.before
	go func() {
		defer close(w.done)
		t := time.NewTicker(rssEvery)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				if rss, _, err := procStatus(pid); err == nil {
					w.maxRSS = max(w.maxRSS, rss)
				}
			}
		}
	}()
	return w
}

func (w *memWatch) finish() {
	close(w.stop)
	<-w.done
	if rss, hwm, err := procStatus(w.pid); err == nil {
		w.maxRSS = max(w.maxRSS, rss)
		w.hwm, w.end = hwm, rss
	}
}

// transfer is one timed upload, download or disk write.
type transfer struct {
	d                   time.Duration
	before, peak, hwm   int64 // the monostack's memory; 0 for the disk
	srvCPU, cli, others float64
}

func (t transfer) rate(bytes int64) float64 { return float64(bytes) / (1 << 20) / t.d.Seconds() }

// imageUpload runs the benchmark against the monostack at base (process
// pid, data dir dataDir) with an image of mib MiB.
func imageUpload(ctx context.Context, base string, creds credentials, dataDir string, pid, mib int) ([]row, error) {
	oc, err := newOSClient(ctx, base, creds)
	if err != nil {
		return nil, err
	}
	oc.http = &http.Client{Timeout: 10 * time.Minute, Transport: &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 2}}
	defer oc.http.CloseIdleConnections()
	size := int64(mib) << 20
	var ups, downs, disks []transfer
	var live []string
	defer func() {
		for _, id := range live {
			oc.do(http.MethodDelete, "/image/v2/images/"+id, nil, nil, http.StatusNoContent)
		}
	}()
	// timed runs f with the monostack's memory watched and the cores'
	// use measured.
	timed := func(watch bool, f func() error) (transfer, error) {
		var w *memWatch
		if watch {
			w = watchMem(pid)
		}
		p := startPhase(pid)
		t0 := time.Now()
		err := f()
		tr := transfer{d: time.Since(t0)}
		r := []row{{}}
		p.fill(r)
		tr.srvCPU, tr.cli, tr.others = r[0].srvCPU, r[0].cliCPU, r[0].other
		if w != nil {
			w.finish()
			tr.before, tr.peak, tr.hwm = w.before, w.maxRSS, w.hwm
			if !w.reset {
				tr.hwm = 0
			}
		}
		return tr, err
	}
	for i := range imageRounds {
		var im struct {
			ID string `json:"id"`
		}
		if _, err := oc.do(http.MethodPost, "/image/v2/images", map[string]any{
			"name": fmt.Sprintf("bench-upload-%d", i), "disk_format": "raw", "container_format": "bare",
		}, &im, http.StatusCreated); err != nil {
			return nil, fmt.Errorf("create image: %w", err)
		}
		live = append(live, im.ID)
		up, err := timed(true, func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/image/v2/images/"+im.ID+"/file", pattern.New(size))
			if err != nil {
				return err
			}
			req.ContentLength = size
			req.Header.Set("X-Auth-Token", oc.token)
			req.Header.Set("Content-Type", "application/octet-stream")
			res, err := oc.http.Do(req)
			if err != nil {
				return err
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
			if res.StatusCode != http.StatusNoContent {
				return fmt.Errorf("upload: %s: %s", res.Status, strings.TrimSpace(string(b)))
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		var got struct {
			Status string `json:"status"`
			Size   int64  `json:"size"`
		}
		if _, err := oc.do(http.MethodGet, "/image/v2/images/"+im.ID, nil, &got, http.StatusOK); err != nil {
			return nil, err
		}
		if got.Status != "active" || got.Size != size {
			return nil, fmt.Errorf("image %s after upload: status %s, size %d (want active, %d)", im.ID, got.Status, got.Size, size)
		}
		ups = append(ups, up)

		down, err := timed(true, func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/image/v2/images/"+im.ID+"/file", nil)
			if err != nil {
				return err
			}
			req.Header.Set("X-Auth-Token", oc.token)
			res, err := oc.http.Do(req)
			if err != nil {
				return err
			}
			defer res.Body.Close()
			n, err := io.CopyBuffer(io.Discard, res.Body, make([]byte, 1<<20))
			if err != nil {
				return err
			}
			if res.StatusCode != http.StatusOK || n != size {
				return fmt.Errorf("download: %s, %d bytes (want %d)", res.Status, n, size)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		downs = append(downs, down)
		if _, err := oc.do(http.MethodDelete, "/image/v2/images/"+im.ID, nil, nil, http.StatusNoContent); err != nil {
			return nil, err
		}
		live = slices.DeleteFunc(live, func(id string) bool { return id == im.ID })

		disk, err := timed(false, func() error { return diskWrite(dataDir, size) })
		if err != nil {
			return nil, err
		}
		disks = append(disks, disk)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return []row{
		transferRow(fmt.Sprintf("image upload, %d MiB (PUT /v2/images/{id}/file)", mib), "near disk speed, flat memory", size, ups),
		transferRow(fmt.Sprintf("image download, %d MiB (GET …/file)", mib), "near disk speed", size, downs),
		transferRow(fmt.Sprintf("disk write, %d MiB in the data dir's file system (1 MiB writes, fsync)", mib), "-", size, disks),
	}, nil
}

// diskWrite writes size bytes to a new file in dir, 1 MiB at a time,
// fsyncs it and removes it.
func diskWrite(dir string, size int64) error {
	f, err := os.CreateTemp(dir, "bench-disk-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	_, err = io.CopyBuffer(struct{ io.Writer }{f}, pattern.New(size), make([]byte, 1<<20))
	if err != nil {
		return err
	}
	return f.Sync()
}

// transferRow is a row of transfers of size bytes: their times, rates and
// the monostack's memory.
func transferRow(name, target string, size int64, ts []transfer) row {
	r := row{name: name, n: len(ts), target: target}
	if len(ts) == 0 {
		return r
	}
	var d []time.Duration
	var rates []string
	var srv, cli, other, total float64
	var before, peak, hwm int64
	for _, t := range ts {
		d = append(d, t.d)
		rates = append(rates, strconv.FormatFloat(t.rate(size), 'f', 0, 64))
		w := t.d.Seconds()
		srv, cli, other, total = srv+t.srvCPU*w, cli+t.cli*w, other+t.others*w, total+w
		before, peak, hwm = max(before, t.before), max(peak, t.peak), max(hwm, t.hwm)
	}
	slices.Sort(d)
	med := d[len(d)/2]
	r.p50, r.p99, r.max = pct(d, 50), pct(d, 99), d[len(d)-1]
	r.srvCPU, r.cliCPU, r.other, r.otherOK = srv/total, cli/total, other/total, true
	r.extra = fmt.Sprintf("median %.0f MB/s; rounds %s MB/s", float64(size)/(1<<20)/med.Seconds(), strings.Join(rates, " "))
	if peak > 0 {
		r.extra += fmt.Sprintf("; monostack VmRSS before ≤ %s, sampled max %s", formatBytes(before), formatBytes(peak))
		if hwm > 0 {
			r.extra += fmt.Sprintf(", VmHWM (reset before) %s", formatBytes(hwm))
		}
	}
	return r
}
