package objectstore

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/monostack/monostack/internal/api"
)

// bulkResult is the outcome of a bulk delete (or an SLO's
// ?multipart-manifest=delete), reported in the body of a 200.
type bulkResult struct {
	deleted, notFound int
	errors            [][2]string // quoted name, status or message
	status            string      // "Response Status"
	body              string      // "Response Body"
}

func statusLine(code int) string { return fmt.Sprintf("%d %s", code, http.StatusText(code)) }

// bulkFormat is the content type a bulk answer is written in.
func bulkFormat(r *http.Request) string {
	ct := bestAccept(r.Header.Get("Accept"), []string{"text/plain", "application/json", "application/xml", "text/xml"})
	if ct == "" {
		ct = "text/plain"
	}
	return ct
}

// writeBulk writes a bulk answer as Swift's heartbeat bodies: sorted
// "Key: value" lines then "Errors:", or JSON, or XML under root.
func writeBulk(w http.ResponseWriter, status int, format, root string, fields map[string]any, errs [][2]string) {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	switch {
	case format == "application/json":
		out := map[string]any{}
		for k, v := range fields {
			out[k] = v
		}
		list := make([][]string, 0, len(errs))
		for _, e := range errs {
			list = append(list, []string{e[0], e[1]})
		}
		out["Errors"] = list
		b, _ := json.Marshal(out)
		buf.Write(b)
	case strings.HasSuffix(format, "/xml"):
		buf.WriteString("<" + root + ">\n")
		for _, k := range keys {
			tag := strings.ToLower(strings.ReplaceAll(k, " ", "_"))
			buf.WriteString("<" + tag + ">")
			xml.EscapeText(&buf, []byte(fmt.Sprint(fields[k])))
			buf.WriteString("</" + tag + ">\n")
		}
		buf.WriteString("<errors>\n")
		for _, e := range errs {
			buf.WriteString("<object><name>")
			xml.EscapeText(&buf, []byte(e[0]))
			buf.WriteString("</name><status>")
			xml.EscapeText(&buf, []byte(e[1]))
			buf.WriteString("</status></object>\n")
		}
		buf.WriteString("</errors>\n</" + root + ">\n")
	default:
		for _, k := range keys {
			fmt.Fprintf(&buf, "%s: %v\n", k, fields[k])
		}
		buf.WriteString("Errors:\n")
		for _, e := range errs {
			fmt.Fprintf(&buf, "%s, %s\n", e[0], e[1])
		}
	}
	w.Header().Set("Content-Type", format)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (res *bulkResult) write(w http.ResponseWriter, format string) {
	if res.status == "" {
		res.status = statusLine(http.StatusOK)
		if len(res.errors) > 0 {
			res.status = statusLine(http.StatusBadRequest)
		} else if res.deleted == 0 && res.notFound == 0 {
			res.status = statusLine(http.StatusBadRequest)
			res.body = "Invalid bulk delete."
		}
	}
	writeBulk(w, http.StatusOK, format, "delete", map[string]any{
		"Number Deleted": res.deleted, "Number Not Found": res.notFound,
		"Response Status": res.status, "Response Body": res.body,
	}, res.errors)
}

// handleBulkDelete is POST (or DELETE) ?bulk-delete: the body lists
// percent-encoded /container/object and /container paths, one a line;
// objects are deleted first, then containers. The answer is always a 200;
// its body says what happened.
func (s *Service) handleBulkDelete(rq *request) error {
	format := bulkFormat(rq.r)
	res := &bulkResult{}
	fail := func(code int, msg string) error {
		res.status, res.body = statusLine(code), msg
		res.write(rq.w, format)
		return nil
	}
	if ct := rq.r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "text/plain") {
		return fail(http.StatusNotAcceptable, "")
	}
	if _, err := bodyLength(rq.r, 1<<40); err != nil {
		return fail(http.StatusLengthRequired, "")
	}
	maxPath := s.cfg.MaxContainerNameLength + s.cfg.MaxObjectNameLength + 2
	var paths []string
	br := bufio.NewReaderSize(rq.r.Body, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || len(line) > 2*3*maxPath {
			return fail(http.StatusBadRequest, "Invalid File Name")
		}
		if t := strings.TrimSpace(string(line)); t != "" {
			name, uerr := url.PathUnescape(t)
			if uerr != nil {
				name = t
			}
			paths = append(paths, name)
			if len(paths) > s.cfg.MaxDeletesPerRequest {
				return fail(http.StatusRequestEntityTooLarge,
					fmt.Sprintf("Maximum Bulk Deletes: %d per request", s.cfg.MaxDeletesPerRequest))
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return errClientDisconnect(err)
		}
	}
	s.deletePaths(rq, paths, res)
	res.write(rq.w, format)
	return nil
}

// deletePaths deletes account-relative paths (/container/object or
// /container) as the caller of rq, objects first, each under the same
// authorization as its own DELETE, recording the outcomes in res.
func (s *Service) deletePaths(rq *request, paths []string, res *bulkResult) {
	type objRef struct{ path, container, name string }
	var objs []objRef
	var containers []string
	for _, p := range paths {
		t := strings.Trim(p, "/")
		if t == "" {
			continue
		}
		c, o, isObj := strings.Cut(strings.TrimPrefix(p, "/"), "/")
		switch {
		case !validName(strings.TrimPrefix(p, "/")):
			res.errors = append(res.errors, [2]string{swiftQuote(p), statusLine(http.StatusPreconditionFailed)})
		case isObj && o != "":
			objs = append(objs, objRef{p, c, o})
		default:
			containers = append(containers, p)
		}
	}
	failed := func(p string, err error) bool {
		switch {
		case isStatus(err, http.StatusNotFound):
			res.notFound++
		default:
			res.errors = append(res.errors, [2]string{swiftQuote(p), statusLine(api.AsError(err).Status)})
		}
		if len(res.errors) >= s.cfg.MaxFailedDeletes {
			res.status, res.body = statusLine(http.StatusBadRequest), "Max delete failures exceeded"
			return true
		}
		return false
	}
	// Objects, a transaction per container (and per thousand objects).
	byContainer := map[string][]objRef{}
	var order []string
	for _, o := range objs {
		if _, ok := byContainer[o.container]; !ok {
			order = append(order, o.container)
		}
		byContainer[o.container] = append(byContainer[o.container], o)
	}
	for _, cname := range order {
		refs := byContainer[cname]
		c, err := s.lookupContainer(rq.ctx, rq.account, cname)
		if err == nil {
			_, err = rq.authorize(rq.account, c, objectWrite)
			if err == nil && c == nil {
				err = errNotFound()
			}
		}
		if err != nil {
			for _, o := range refs {
				if failed(o.path, err) {
					return
				}
			}
			continue
		}
		for len(refs) > 0 {
			chunk := refs[:min(len(refs), 1000)]
			refs = refs[len(chunk):]
			outcomes := make([]error, len(chunk))
			var files []string
			now := nowUnix()
			err := s.write(func(ctx context.Context, tx *sql.Tx) error {
				files = files[:0]
				for i, o := range chunk {
					row, err := s.deleteObjectRow(ctx, tx, c.ID, o.name)
					if isStatus(err, http.StatusNotFound) {
						outcomes[i] = err
						continue
					}
					if err != nil {
						return err
					}
					files = append(files, row.File)
					if row.expired(now) {
						outcomes[i] = errNotFound()
					} else {
						outcomes[i] = nil
					}
				}
				return nil
			})
			// Files go only once their rows are gone for good: a failed
			// commit rolled the rows back, and they still name them.
			if err == nil {
				for _, f := range files {
					s.removeFile(f)
				}
			}
			for i, o := range chunk {
				e := outcomes[i]
				if err != nil {
					e = err
				}
				if e == nil {
					res.deleted++
				} else if failed(o.path, e) {
					return
				}
			}
		}
	}
	for _, p := range containers {
		name := strings.Trim(p, "/")
		_, err := rq.authorize(rq.account, nil, containerWrite)
		if err == nil {
			err = s.deleteContainer(rq.ctx, rq.account, name)
		}
		if err == nil {
			res.deleted++
		} else if failed(p, err) {
			return
		}
	}
}
