package content

import (
	"bufio"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pulpo/pulpo/host/db"
)

// nameColumn pads names like nginx's and Pulp's autoindex pages.
const nameColumn = 50

// writeListing writes an "Index of" page of entries, streamed: a listing
// of a 100k-file directory is never held as one string.
func writeListing(w http.ResponseWriter, r *http.Request, entries []db.DirEntry, parent bool) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	title := html.EscapeString(r.URL.Path)
	bw.WriteString("<!DOCTYPE html>\n<html>\n<head><title>Index of " + title + "</title></head>\n<body>\n<h1>Index of " +
		title + "</h1>\n<hr><pre>")
	if parent {
		bw.WriteString(`<a href="../">../</a>` + "\n")
	}
	for _, e := range entries {
		name := e.Name
		if e.Dir {
			name += "/"
		}
		href := url.PathEscape(e.Name)
		if strings.Contains(href, ":") {
			href = "./" + href // never a scheme ("javascript:...")
		}
		bw.WriteString(`<a href="` + href)
		if e.Dir {
			bw.WriteString("/")
		}
		bw.WriteString(`">` + html.EscapeString(name) + "</a>")
		if pad := nameColumn - utf8.RuneCountInString(name); pad > 0 {
			bw.WriteString(strings.Repeat(" ", pad))
		}
		date, size := "-", "-"
		if e.Modified != nil {
			date = e.Modified.UTC().Format("02-Jan-2006 15:04")
		}
		if e.Size != nil {
			size = strconv.FormatInt(*e.Size, 10)
		}
		bw.WriteString(" " + date + strings.Repeat(" ", max(1, 20-len(date))) + size + "\n")
	}
	bw.WriteString("</pre><hr>\n</body>\n</html>\n")
	bw.Flush()
}
