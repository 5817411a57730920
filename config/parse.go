package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Parse decodes a TOML document into a Config and validates it. name is
// used in error messages (the file's path). Keys the document leaves out
// keep their defaults. On error the Config is not meant to be used; the
// error is an Errors listing every problem (up to 50, then a last word),
// each with its line, in file order. Input over MaxFileSize is refused.
//
// The TOML library stops at the first value it cannot decode and matches
// keys case-insensitively; so the document is decoded to raw values first
// and mapped onto Config here, one key at a time, against the struct's
// toml tags.
func Parse(data []byte, name string) (Config, error) {
	c := Default()
	if len(data) > MaxFileSize {
		return c, Errors{&Error{File: name, Msg: fmt.Sprintf("%d bytes: a configuration file is at most %d (is this the right file?)", len(data), MaxFileSize)}}
	}
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return c, Errors{&Error{File: name, Line: pe.Position.Line, Msg: "syntax error: " + pe.Message}}
		}
		return c, Errors{&Error{File: name, Msg: err.Error()}}
	}
	d := &decoder{md: &md, data: string(data), file: name, lines: make(map[string]int)}
	d.table(nil, top, reflect.ValueOf(&c).Elem())
	if !d.full() {
		c.validate(func(key, msg string) { d.add(d.lines[key], key, msg) })
	}
	// File order; problems without a line (cross-field, defaults) last.
	sort.SliceStable(d.errs, func(i, j int) bool {
		a, b := d.errs[i].(*Error).Line, d.errs[j].(*Error).Line
		return a != 0 && (b == 0 || a < b)
	})
	return c, d.errs.orNil()
}

// Limits that keep Parse fast on any input.
const (
	MaxFileSize      = 1 << 20 // bytes
	maxProblems      = 50      // then "too many problems"
	maxImplicitDepth = 8       // how deep to look for an implicit table's line
)

type decoder struct {
	md    *toml.MetaData
	data  string
	file  string
	lines map[string]int // dotted key → line, for validation errors
	errs  Errors
}

func (d *decoder) add(line int, key, msg string) {
	if d.full() {
		return
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: key, Msg: msg})
	if len(d.errs) == maxProblems {
		d.errs = append(d.errs, &Error{File: d.file, Msg: fmt.Sprintf("too many problems (%d), stopping", maxProblems)})
	}
}

// full reports whether Parse has given up adding problems.
func (d *decoder) full() bool { return len(d.errs) > maxProblems }

// probe captures a raw TOML value. Its UnmarshalTOML fails on purpose: the
// TOML library then returns a ParseError positioned at the key, which is the
// only way v1.6 offers to learn where a key is.
type probe struct{ v any }

var errProbe = errors.New("probe")

func (p *probe) UnmarshalTOML(v any) error { p.v = v; return errProbe }

// locate returns a key's raw value and line (0 when unknown). Each call
// costs a pass over the document (the library's ParseError computes a
// column), which is why Parse stops after maxProblems.
func (d *decoder) locate(path toml.Key, p toml.Primitive) (any, int) {
	var pr probe
	err := d.md.PrimitiveDecode(p, &pr)
	var pe toml.ParseError
	line := 0
	if errors.As(err, &pe) && pe.Position.Line > 0 {
		// Position.Line is where the value's token ended (the last line of
		// a multi-line string); Start is where it began.
		line = 1 + strings.Count(d.data[:min(max(pe.Position.Start, 0), len(d.data))], "\n")
	}
	if _, ok := pr.v.(map[string]any); ok && line == 0 && len(path) < maxImplicitDepth {
		// An implicit table ("a.b = 1", "[a.b]") has no position of its
		// own: use the line of the first key under it, in file order.
		for _, k := range d.md.Keys() {
			if len(k) <= len(path) || !slices.Equal(k[:len(path)], path) {
				continue
			}
			var sub map[string]toml.Primitive
			if d.md.PrimitiveDecode(p, &sub) == nil {
				if cp, ok := sub[k[len(path)]]; ok {
					_, line = d.locate(k[:len(path)+1], cp)
				}
			}
			break
		}
	}
	return pr.v, line
}

// table maps the keys of one TOML table onto the struct rv.
func (d *decoder) table(path toml.Key, prims map[string]toml.Primitive, rv reflect.Value) {
	fields := fieldsOf(rv.Type())
	keys := make([]string, 0, len(prims))
	for k := range prims {
		keys = append(keys, k)
	}
	sort.Strings(keys) // a stable order for keys on one line
	for _, key := range keys {
		if d.full() {
			return
		}
		prim := prims[key]
		kpath := append(slices.Clip(path), key)
		full := kpath.String()
		raw, line := d.locate(kpath, prim)
		d.lines[full] = line
		i, ok := fields.index[key]
		if !ok {
			d.add(line, full, fields.unknown(key, path.String()))
			continue
		}
		fv := rv.Field(i)
		if isTable(fv.Type()) {
			var sub map[string]toml.Primitive
			if _, ok := raw.(map[string]any); !ok {
				d.add(line, full, fmt.Sprintf("want a table ([%s]), got %s", full, describe(raw)))
			} else if err := d.md.PrimitiveDecode(prim, &sub); err != nil {
				d.add(line, full, err.Error())
			} else {
				d.table(kpath, sub, fv)
			}
			continue
		}
		if err := set(fv, raw); err != nil {
			d.add(line, full, err.Error())
		}
	}
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	sizeType        = reflect.TypeFor[Size]()
	durationType    = reflect.TypeFor[Duration]()
)

// isTable reports whether a field is a TOML table: a struct that is not a
// value type of its own.
func isTable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(textUnmarshaler)
}

// set stores a raw TOML value into a leaf field, or says why it can't. On
// error the field keeps its value.
func set(fv reflect.Value, raw any) error {
	t := fv.Type()
	switch {
	case t == sizeType:
		switch v := raw.(type) {
		case int64:
			fv.SetInt(v)
			return nil
		case string:
			s, err := ParseSize(v)
			if err != nil {
				return err
			}
			fv.SetInt(int64(s))
			return nil
		}
		return fmt.Errorf("want a size (1048576 or \"25MiB\"), got %s", describe(raw))
	case reflect.PointerTo(t).Implements(textUnmarshaler):
		s, ok := raw.(string)
		if !ok {
			if t == durationType {
				return fmt.Errorf("want a duration string such as \"30s\", got %s", describe(raw))
			}
			return fmt.Errorf("want a string, got %s", describe(raw))
		}
		return fv.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
	}
	switch t.Kind() {
	case reflect.String:
		s, ok := raw.(string)
		if !ok {
			return fmt.Errorf("want a string, got %s", describe(raw))
		}
		fv.SetString(s)
		return nil
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			return fmt.Errorf("want true or false, got %s", describe(raw))
		}
		fv.SetBool(b)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := raw.(int64)
		if !ok {
			return fmt.Errorf("want an integer, got %s", describe(raw))
		}
		if fv.OverflowInt(n) {
			return fmt.Errorf("%d is out of range", n)
		}
		fv.SetInt(n)
		return nil
	case reflect.Float32, reflect.Float64:
		// An integer is a float too: "reject_at = 10" means 10.0.
		var f float64
		switch v := raw.(type) {
		case float64:
			f = v
		case int64:
			f = float64(v)
			if int64(f) != v {
				return fmt.Errorf("%d cannot be held exactly by a float", v)
			}
		default:
			return fmt.Errorf("want a number, got %s", describe(raw))
		}
		if fv.OverflowFloat(f) {
			return fmt.Errorf("%v is out of range", f)
		}
		fv.SetFloat(f)
		return nil
	case reflect.Slice:
		if t.Elem().Kind() != reflect.String {
			break
		}
		arr, ok := raw.([]any)
		if !ok {
			return fmt.Errorf("want an array of strings, got %s", describe(raw))
		}
		out := reflect.MakeSlice(t, len(arr), len(arr))
		for i, e := range arr {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("element %d: want a string, got %s", i+1, describe(e))
			}
			out.Index(i).SetString(s)
		}
		fv.Set(out)
		return nil
	}
	// A programming error: TestSchemaTypes keeps it from shipping.
	return fmt.Errorf("internal error: no decoder for type %s", t)
}

// describe names a raw TOML value's type (and shows short scalars) for
// error messages.
func describe(raw any) string {
	switch v := raw.(type) {
	case string:
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		return "string " + strconv.Quote(v)
	case int64:
		return "integer " + strconv.FormatInt(v, 10)
	case float64:
		return "float " + strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return "boolean " + strconv.FormatBool(v)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case nil:
		return "nothing"
	}
	return "a date/time" // time.Time and the toml.Local* types
}

// structFields is the key layout of one struct type.
type structFields struct {
	index map[string]int // toml key → field index
	keys  []string       // in field order
}

func fieldsOf(t reflect.Type) structFields {
	f := structFields{index: make(map[string]int)}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if name == "" || name == "-" || !t.Field(i).IsExported() {
			continue
		}
		f.index[name] = i
		f.keys = append(f.keys, name)
	}
	return f
}

// unknown explains an unknown key, with a guess when the key differs from a
// known one only in case, '-' for '_', or a letter (two in long keys).
func (f structFields) unknown(key, path string) string {
	where := "at the top level"
	if path != "" {
		where = "in [" + path + "]"
	}
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	for _, k := range f.keys {
		if d := editDistance(norm(k), norm(key)); d == 0 || d == 1 && len(key) > 3 || d == 2 && len(key) > 7 {
			return fmt.Sprintf("unknown key %s (did you mean %q?)", where, k)
		}
	}
	return fmt.Sprintf("unknown key %s (known: %s)", where, strings.Join(f.keys, ", "))
}

// editDistance is the Levenshtein distance between two short strings.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
