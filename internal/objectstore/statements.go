package objectstore

import (
	"context"
	"database/sql"
)

// statements are the queries of the hot paths, prepared once (parsing SQL
// costs more than running these).
type statements struct {
	container    *sql.Stmt // by account and name
	object       *sql.Stmt // by container and name
	objectFile   *sql.Stmt // file, stored, delete_at by container and name
	insertObject *sql.Stmt
	updateObject *sql.Stmt
	deleteObject *sql.Stmt
	countObjects *sql.Stmt // add to a container's counters
	blob         *sql.Stmt // a small object's bytes, by file (see inline.go)
	insertBlob   *sql.Stmt
	deleteBlob   *sql.Stmt
	all          []*sql.Stmt
}

func (st *statements) prepare(ctx context.Context, db interface {
	PrepareContext(context.Context, string) (*sql.Stmt, error)
}) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&st.container, `SELECT ` + containerCols + ` FROM swift_containers WHERE account=? AND name=?`},
		{&st.object, `SELECT ` + objectCols + ` FROM swift_objects WHERE container_id=? AND name=?`},
		{&st.objectFile, `SELECT file, stored, delete_at FROM swift_objects WHERE container_id=? AND name=?`},
		{&st.insertObject, `INSERT INTO swift_objects (` + objectCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&st.updateObject, `UPDATE swift_objects SET file=?, size=?, stored=?, etag=?, content_type=?, modified=?, delete_at=?, meta=?
			WHERE container_id=? AND name=?`},
		{&st.deleteObject, `DELETE FROM swift_objects WHERE container_id=? AND name=?`},
		{&st.countObjects, `UPDATE swift_containers SET object_count=object_count+?, bytes_used=bytes_used+? WHERE id=?`},
		{&st.blob, `SELECT data FROM swift_blobs WHERE file=?`},
		{&st.insertBlob, `INSERT INTO swift_blobs (file, data) VALUES (?, ?)`},
		{&st.deleteBlob, `DELETE FROM swift_blobs WHERE file=?`},
	} {
		s, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			st.close()
			return err
		}
		*p.dst = s
		st.all = append(st.all, s)
	}
	return nil
}

func (st *statements) close() {
	for _, s := range st.all {
		s.Close()
	}
	st.all = nil
}

// in returns st for use in tx, or st itself when tx is nil.
func in(ctx context.Context, tx *sql.Tx, st *sql.Stmt) *sql.Stmt {
	if tx == nil {
		return st
	}
	return tx.StmtContext(ctx, st)
}
