package objectstore

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
)

func TestBulkDelete(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	tc.mkContainer("empty")
	tc.mkContainer("full")
	tc.put("full", "stays", "x")
	for i := range 5 {
		tc.put("c", fmt.Sprintf("o%d", i), "x")
	}
	tc.put("c", "with space/é", "x")
	body := strings.Join([]string{
		"/c/o0", "c/o1", "/c/" + swiftQuote("with space/é"), "/c/missing", "/nocontainer/x", "/empty", "/full", "", "  /c/o2  ",
	}, "\n")
	// Plain text answer (the default).
	res := tc.must(200, tc.do("POST", acct(tc.demoProject)+"?bulk-delete", tc.demo, body, "Content-Type", "text/plain"))
	want := "Number Deleted: 5\nNumber Not Found: 2\nResponse Body: \nResponse Status: 400 Bad Request\nErrors:\n/full, 409 Conflict\n"
	if string(res.Body) != want {
		t.Errorf("plain answer:\n%s\nwant:\n%s", res.Body, want)
	}
	tc.must(404, tc.do("HEAD", tc.demoPath("c", "o0"), tc.demo, nil))
	tc.must(404, tc.do("HEAD", tc.demoPath("c", "with space/é"), tc.demo, nil))
	tc.must(404, tc.do("HEAD", tc.demoPath("empty"), tc.demo, nil))
	tc.must(200, tc.do("HEAD", tc.demoPath("full", "stays"), tc.demo, nil))
	res = tc.must(204, tc.do("HEAD", tc.demoPath("c"), tc.demo, nil))
	if res.Header.Get("X-Container-Object-Count") != "2" {
		t.Errorf("count after bulk delete %v", res.Header)
	}
	// JSON (as gophercloud asks), with DELETE too.
	res = tc.must(200, tc.do("DELETE", acct(tc.demoProject)+"?bulk-delete=true", tc.demo, "/c/o3\n/c/o4\n", "Accept", "application/json"))
	var out struct {
		Deleted  int        `json:"Number Deleted"`
		NotFound int        `json:"Number Not Found"`
		Status   string     `json:"Response Status"`
		Errors   [][]string `json:"Errors"`
	}
	if err := json.Unmarshal(res.Body, &out); err != nil || out.Deleted != 2 || out.Status != "200 OK" || out.Errors == nil {
		t.Errorf("JSON answer %s", res.Body)
	}
	// XML.
	res = tc.must(200, tc.do("POST", acct(tc.demoProject)+"?bulk-delete", tc.demo, "/c/gone\n", "Accept", "application/xml"))
	var x struct {
		XMLName  xml.Name `xml:"delete"`
		NotFound int      `xml:"number_not_found"`
		Status   string   `xml:"response_status"`
	}
	if err := xml.Unmarshal(res.Body, &x); err != nil || x.NotFound != 1 || x.Status != "200 OK" {
		t.Errorf("XML answer %s", res.Body)
	}
	// Nothing to do, a wrong content type, too many.
	res = tc.must(200, tc.do("POST", acct(tc.demoProject)+"?bulk-delete", tc.demo, "\n\n"))
	if !strings.Contains(string(res.Body), "Response Status: 400 Bad Request") || !strings.Contains(string(res.Body), "Invalid bulk delete.") {
		t.Errorf("empty bulk delete %s", res.Body)
	}
	res = tc.must(200, tc.do("POST", acct(tc.demoProject)+"?bulk-delete", tc.demo, "/c/x", "Content-Type", "application/json"))
	if !strings.Contains(string(res.Body), "406 Not Acceptable") {
		t.Errorf("JSON body %s", res.Body)
	}
	small := newTestCloudConfig(t, Config{MaxDeletesPerRequest: 2})
	res = small.must(200, small.do("POST", acct(small.demoProject)+"?bulk-delete", small.demo, "/a/1\n/a/2\n/a/3\n"))
	if !strings.Contains(string(res.Body), "413 Request Entity Too Large") || !strings.Contains(string(res.Body), "Maximum Bulk Deletes: 2 per request") {
		t.Errorf("too many %s", res.Body)
	}
	// Others cannot delete through it.
	other, _, _ := tc.newUser("eve", "member")
	res = tc.must(200, tc.do("POST", acct(tc.demoProject)+"?bulk-delete", other, "/full/stays\n/full\n"))
	if !strings.Contains(string(res.Body), "/full/stays, 403 Forbidden") || !strings.Contains(string(res.Body), "/full, 403 Forbidden") {
		t.Errorf("other's bulk delete %s", res.Body)
	}
	tc.must(200, tc.do("HEAD", tc.demoPath("full", "stays"), tc.demo, nil))
	// A large batch.
	tc.mkContainer("many")
	var lines []string
	for i := range 300 {
		tc.put("many", fmt.Sprintf("%03d", i), "x")
		lines = append(lines, fmt.Sprintf("/many/%03d", i))
	}
	lines = append(lines, "/many")
	res = tc.must(200, tc.do("POST", acct(tc.demoProject)+"?bulk-delete", tc.demo, strings.Join(lines, "\n"), "Accept", "application/json"))
	if err := json.Unmarshal(res.Body, &out); err != nil || out.Deleted != 301 {
		t.Errorf("large batch %s", res.Body)
	}
}
