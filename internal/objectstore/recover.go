package objectstore

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
)

// recoverReport is what a start-up check found and fixed.
type recoverReport struct {
	TempFiles    int // temporary files removed
	OrphanFiles  int // files no row referred to, removed
	MissingFiles int // rows whose file (or blob) was missing or of the wrong size, dropped
	OrphanBlobs  int // blobs in swift_blobs no row referred to, deleted
}

// recover makes rows, files and counters agree after whatever stopped the
// last run: temporary files go, files no row names go, rows whose file is
// missing (or not as long as the row says) go, and every container's
// counters are recomputed from its rows. It runs before anything else
// touches the store.
//
// Blobs in the database (rows whose file starts with "db/") are written
// and deleted in the transactions that write and delete their rows, so a
// crash cannot part them; the check still drops a row whose blob is
// missing and deletes a blob no row names, from the blobs' primary key
// alone (it never reads the bytes: a size check would read every small
// object, and a crash cannot make a blob the wrong size).
func (s *Service) recover(ctx context.Context) error {
	rep, err := s.check(ctx)
	if err != nil {
		return err
	}
	if rep != (recoverReport{}) {
		s.log.Warn("object store start-up check fixed inconsistencies",
			"temp_files", rep.TempFiles, "orphan_files", rep.OrphanFiles, "rows_without_file", rep.MissingFiles,
			"orphan_blobs", rep.OrphanBlobs)
	}
	return nil
}

func (s *Service) check(ctx context.Context) (recoverReport, error) {
	var rep recoverReport
	// 1. Temporary files: writes that never finished.
	tmp, err := os.ReadDir(s.blobs.tmp)
	if err != nil {
		return rep, err
	}
	for _, e := range tmp {
		if err := os.RemoveAll(filepath.Join(s.blobs.tmp, e.Name())); err != nil {
			return rep, err
		}
		rep.TempFiles++
	}
	// 2. The files the rows refer to, with the sizes they must have.
	type rowRef struct {
		cid  int64
		name string
		size int64
	}
	want := map[string]rowRef{}
	rows, err := s.db.QueryContext(ctx, `SELECT file, container_id, name, stored FROM swift_objects`)
	if err != nil {
		return rep, err
	}
	for rows.Next() {
		var f string
		var r rowRef
		if err := rows.Scan(&f, &r.cid, &r.name, &r.size); err != nil {
			rows.Close()
			return rep, err
		}
		want[f] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, err
	}
	// 3. Every file on disk: keep those a row names (at the right size).
	dirs, err := os.ReadDir(s.blobs.objects)
	if err != nil {
		return rep, err
	}
	found := make(map[string]bool, len(want))
	for _, d := range dirs {
		full := filepath.Join(s.blobs.objects, d.Name())
		if !d.IsDir() {
			if err := os.Remove(full); err != nil {
				return rep, err
			}
			rep.OrphanFiles++
			continue
		}
		entries, err := os.ReadDir(full)
		if err != nil {
			return rep, err
		}
		for _, e := range entries {
			rel := d.Name() + "/" + e.Name()
			r, ok := want[rel]
			if ok {
				if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.Size() == r.size && validFileName(rel) {
					found[rel] = true
					continue
				}
			}
			if err := os.RemoveAll(filepath.Join(full, e.Name())); err != nil {
				return rep, err
			}
			if !ok {
				rep.OrphanFiles++
			}
		}
		s.blobs.dirs.Store(d.Name(), true)
	}
	// 3b. Every blob in the database: keep those a row names. This reads
	// the primary key's index only, never the bytes.
	var orphanBlobs []string
	blobRows, err := s.db.QueryContext(ctx, `SELECT file FROM swift_blobs`)
	if err != nil {
		return rep, err
	}
	for blobRows.Next() {
		var f string
		if err := blobRows.Scan(&f); err != nil {
			blobRows.Close()
			return rep, err
		}
		if _, ok := want[f]; ok && isDBFile(f) {
			found[f] = true
		} else {
			orphanBlobs = append(orphanBlobs, f)
		}
	}
	blobRows.Close()
	if err := blobRows.Err(); err != nil {
		return rep, err
	}
	rep.OrphanBlobs = len(orphanBlobs)
	// 4. Rows whose file or blob is gone, blobs no row names, then the
	// counters, in one transaction.
	var missing []rowRef
	for f, r := range want {
		if !found[f] {
			missing = append(missing, r)
		}
	}
	rep.MissingFiles = len(missing)
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, r := range missing {
			if _, err := tx.ExecContext(ctx, `DELETE FROM swift_objects WHERE container_id=? AND name=?`, r.cid, r.name); err != nil {
				return err
			}
		}
		for _, f := range orphanBlobs {
			if _, err := tx.ExecContext(ctx, `DELETE FROM swift_blobs WHERE file=?`, f); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE swift_containers SET
			object_count = (SELECT count(*) FROM swift_objects WHERE container_id = swift_containers.id),
			bytes_used = (SELECT coalesce(sum(stored), 0) FROM swift_objects WHERE container_id = swift_containers.id)`)
		return err
	})
	if err != nil {
		return rep, err
	}
	if rep.OrphanFiles > 0 || rep.TempFiles > 0 {
		if err := syncDir(s.blobs.tmp); err != nil {
			return rep, err
		}
	}
	return rep, nil
}
