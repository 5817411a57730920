package mime

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
)

// isArchive reports the types the walker looks into.
func isArchive(t string) bool {
	switch t {
	case typeZip, typeTar, typeGzip, typeBzip2, typeCFB, typeRar, type7z:
		return true
	}
	return false
}

// archive lists an archive read from r and judges its members; depth is
// the archive's own level (1 for an attachment).
func (w *walker) archive(r io.Reader, t string, c *content, depth int) {
	where := c.at()
	switch t {
	case typeZip, typeCFB, type7z:
		f, size, ok := w.spool(r, where)
		if !ok {
			return
		}
		switch t {
		case typeZip:
			w.zip(f, size, c, depth)
		case typeCFB:
			w.cfb(f, size, c, depth)
		default:
			w.sevenZip(f, size, c, depth)
		}
	case typeGzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			w.malformed("unreadable gzip: "+trimForDetail(err.Error()), where)
			return
		}
		name := zr.Name
		if name == "" {
			name = innerName(c.names, ".gz", ".tgz", ".z")
		}
		w.inner(&budgetReader{r: zr, w: w}, c, depth, name, "gzip")
	case typeBzip2:
		name := innerName(c.names, ".bz2", ".tbz2", ".tbz")
		w.inner(&budgetReader{r: bzip2.NewReader(r), w: w}, c, depth, name, "bzip2")
	case typeTar:
		w.tar(r, c, depth)
	case typeRar:
		w.rar(r, c, depth)
	}
}

// inner judges the payload of a compression layer.
func (w *walker) inner(r io.Reader, c *content, depth int, name, kind string) {
	ic := &content{
		where:     c.at() + " >",
		depth:     c.depth,
		adepth:    depth,
		unwrapped: true,
		member:    true,
		replyName: c.replyName,
	}
	if name != "" {
		ic.names = []string{name}
	} else {
		ic.where += " (" + kind + ")"
	}
	er := &errReader{r: r}
	w.content(er, ic)
	if er.err != nil {
		if errors.Is(er.err, errBudget) {
			w.overLimit("archive-max-size "+strconv.FormatInt(w.o.ArchiveMaxSize, 10), c.at())
		} else {
			w.malformed("unreadable "+kind+": "+trimForDetail(er.err.Error()), c.at())
		}
	}
}

// innerName is the name of what a compressed file holds: "a.tar.gz" →
// "a.tar", "a.tgz" → "a.tar", "x.exe.bz2" → "x.exe".
func innerName(names []string, suffixes ...string) string {
	if len(names) == 0 {
		return ""
	}
	n := names[0]
	lower := strings.ToLower(n)
	for _, s := range suffixes {
		if strings.HasSuffix(lower, s) {
			base := n[:len(n)-len(s)]
			if strings.HasPrefix(s, ".t") && s != ".tar" {
				return base + ".tar"
			}
			return base
		}
	}
	return ""
}

// errReader keeps the first error other than io.EOF of a reader.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// spool copies r to a 0600 temporary file, at most ArchiveMaxSize bytes.
// The file is removed when the walk ends.
func (w *walker) spool(r io.Reader, where string) (*os.File, int64, bool) {
	f, err := w.s.tempFile()
	if err != nil {
		// Nothing to look into it with: a failure of ours, not the
		// sender's; over a limit is the documented outcome.
		w.overLimit("archive-spool ("+trimForDetail(err.Error())+")", where)
		return nil, 0, false
	}
	w.files = append(w.files, f)
	n, err := io.Copy(f, io.LimitReader(r, w.o.ArchiveMaxSize+1))
	switch {
	case err != nil && errors.Is(err, errBudget):
		w.overLimit("archive-max-size "+strconv.FormatInt(w.o.ArchiveMaxSize, 10), where)
		return nil, 0, false
	case err != nil:
		w.overLimit("archive-spool ("+trimForDetail(err.Error())+")", where)
		return nil, 0, false
	case n > w.o.ArchiveMaxSize:
		w.overLimit("archive-max-size "+strconv.FormatInt(w.o.ArchiveMaxSize, 10), where)
		return nil, 0, false
	}
	return f, n, true
}

// member returns the content of one archive member.
func (w *walker) member(c *content, depth int, name string) *content {
	mc := &content{
		where:     c.at() + " >",
		depth:     c.depth,
		adepth:    depth,
		member:    true,
		replyName: c.replyName,
	}
	if name != "" {
		mc.names = []string{name}
	}
	return mc
}

// zip judges the members of a zip file.
func (w *walker) zip(f *os.File, size int64, c *content, depth int) {
	where := c.at()
	zr, err := zip.NewReader(f, size)
	if err != nil {
		// Unreadable to archive/zip, perhaps not to the recipient's
		// program: judge the names of its local headers.
		w.malformed("unreadable zip: "+trimForDetail(err.Error()), where)
		for _, name := range localZipNames(f, size, w.o.MaxParts) {
			mc := w.member(c, depth, name)
			w.nameRules(name, mc.at(), mc.replyName)
		}
		return
	}
	encrypted := false
	for i, zf := range zr.File {
		if i >= w.o.MaxParts {
			w.overLimit("max-parts "+strconv.Itoa(w.o.MaxParts)+" (archive members)", where)
			break
		}
		if strings.HasSuffix(zf.Name, "/") && zf.UncompressedSize64 == 0 {
			continue // a folder
		}
		mc := w.member(c, depth, zf.Name)
		if zf.Flags&1 != 0 {
			encrypted = true
			w.nameRules(zf.Name, mc.at(), mc.replyName)
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			// A compression method archive/zip lacks (bzip2, deflate64,
			// implode, lzma): the name is all there is to judge.
			w.nameRules(zf.Name, mc.at(), mc.replyName)
			w.rep.Parts = appendPart(w.rep.Parts, Part{Where: mc.at(), Names: mc.names})
			continue
		}
		er := &errReader{r: &budgetReader{r: rc, w: w}}
		w.content(er, mc)
		rc.Close()
		if errors.Is(er.err, errBudget) {
			w.overLimit("archive-max-size "+strconv.FormatInt(w.o.ArchiveMaxSize, 10), where)
			break
		}
	}
	if encrypted {
		w.hit(RuleEncryptedArchive, "zip", where, c.replyName, w.o.EncryptedArchives)
	}
}

func appendPart(ps []Part, p Part) []Part {
	if len(ps) >= maxReportParts {
		return ps
	}
	return append(ps, p)
}

// localZipNames finds the names in a zip's local file headers ("PK\3\4"),
// for a zip whose central directory is unreadable.
func localZipNames(f *os.File, size int64, max int) []string {
	const chunk = 1 << 20
	const overlap = 30 + 1<<16
	var names []string
	buf := make([]byte, chunk+overlap)
	for off := int64(0); off < size && len(names) < max; off += chunk {
		n, _ := f.ReadAt(buf, off)
		b := buf[:n]
		for i := 0; i < min(len(b), chunk) && len(names) < max; {
			j := bytes.Index(b[i:], []byte("PK\x03\x04"))
			if j < 0 || i+j >= chunk {
				break
			}
			at := i + j
			if at+30 <= len(b) {
				nl := int(binary.LittleEndian.Uint16(b[at+26:]))
				if at+30+nl <= len(b) && nl > 0 {
					names = append(names, string(b[at+30:at+30+nl]))
				}
			}
			i = at + 4
		}
	}
	return names
}

// tar judges the members of a tar stream.
func (w *walker) tar(r io.Reader, c *content, depth int) {
	where := c.at()
	tr := tar.NewReader(r)
	for i := 0; ; i++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			if errors.Is(err, errBudget) {
				w.overLimit("archive-max-size "+strconv.FormatInt(w.o.ArchiveMaxSize, 10), where)
			} else {
				w.malformed("unreadable tar: "+trimForDetail(err.Error()), where)
			}
			return
		}
		if i >= w.o.MaxParts {
			w.overLimit("max-parts "+strconv.Itoa(w.o.MaxParts)+" (archive members)", where)
			return
		}
		// (The reader reports the old TypeRegA as TypeReg.)
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeSymlink && hdr.Typeflag != tar.TypeLink {
			continue
		}
		mc := w.member(c, depth, hdr.Name)
		if hdr.Typeflag != tar.TypeReg {
			w.nameRules(hdr.Name, mc.at(), mc.replyName)
			continue
		}
		w.content(tr, mc)
	}
}
