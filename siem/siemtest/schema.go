package siemtest

// Checkers of exported events against the published schemas vendored in
// siem/testdata (see its NOTICE-schemas): ECS's ecs_flat.yml, OCSF's
// compiled schema, and the CEF key dictionary. They are written from the
// schema files, not from the encoders: each reports what a schema-aware
// consumer would reject.

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

func readGz(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return io.ReadAll(z)
}

// DecodeNumbers decodes a JSON object keeping numbers as json.Number, so
// that an integer field can be told from a float one.
func DecodeNumbers(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	return m, nil
}

// At walks a decoded JSON object by a dotted path; nil where it leads
// nowhere.
func At(m map[string]any, path string) any {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[k]
	}
	return v
}

// jsonKind names a decoded JSON value's type.
func jsonKind(v any) string {
	switch v := v.(type) {
	case string:
		return "string"
	case json.Number:
		if _, err := v.Int64(); err == nil {
			return "integer"
		}
		return "number"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		kinds := map[string]bool{}
		for _, e := range v {
			kinds[jsonKind(e)] = true
		}
		var ks []string
		for k := range kinds {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return "array<" + strings.Join(ks, "|") + ">"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// typeLedger remembers the JSON type each field had in the documents seen
// so far: a field that changes type is rejected by Elasticsearch once
// mapped, and breaks a columnar store.
type typeLedger struct {
	seen map[string]string // path → "kind (first document)"
}

func (l *typeLedger) note(doc, path string, v any) error {
	if l.seen == nil {
		l.seen = map[string]string{}
	}
	k := jsonKind(v)
	if strings.HasPrefix(k, "array<") {
		// An array of one type is that type to Elasticsearch.
		k = strings.TrimSuffix(strings.TrimPrefix(k, "array<"), ">")
	}
	if k == "integer" {
		k = "number"
	}
	prev, ok := l.seen[path]
	if !ok {
		l.seen[path] = k + "\x00" + doc
		return nil
	}
	pk, pdoc, _ := strings.Cut(prev, "\x00")
	if pk != k {
		return fmt.Errorf("%s: %s is %s here but %s in %s", doc, path, k, pk, pdoc)
	}
	return nil
}

// --- ECS ---------------------------------------------------------------

type ecsFieldDef struct {
	Type          string `yaml:"type"`
	AllowedValues []struct {
		Name               string   `yaml:"name"`
		ExpectedEventTypes []string `yaml:"expected_event_types"`
	} `yaml:"allowed_values"`
}

// templateFields reads an Elasticsearch index template: every mapped
// field by dotted name and its type ("object" for one with properties).
func templateFields(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tmpl struct {
		Template struct {
			Mappings struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"mappings"`
		} `json:"template"`
	}
	if err := json.Unmarshal(b, &tmpl); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	out := map[string]string{}
	var walk func(prefix string, props map[string]json.RawMessage) error
	walk = func(prefix string, props map[string]json.RawMessage) error {
		for name, raw := range props {
			var f struct {
				Type       string                     `json:"type"`
				Properties map[string]json.RawMessage `json:"properties"`
			}
			if err := json.Unmarshal(raw, &f); err != nil {
				return fmt.Errorf("template %s%s: %w", prefix, name, err)
			}
			switch {
			case f.Properties != nil:
				out[prefix+name] = "object"
				if err := walk(prefix+name+".", f.Properties); err != nil {
					return err
				}
			case f.Type == "":
				return fmt.Errorf("template %s%s: no type", prefix, name)
			default:
				out[prefix+name] = f.Type
			}
		}
		return nil
	}
	if err := walk("", tmpl.Template.Mappings.Properties); err != nil {
		return nil, err
	}
	if out["mcptrail"] != "object" {
		return nil, fmt.Errorf("template maps no mcptrail object")
	}
	return out, nil
}

// ECSChecker checks ECS documents: every field is an ECS field (or under
// mcptrail.*, mapped by the template) whose value has the JSON type
// the field's type takes, within its allowed values; event.type fits
// event.category; and no field changes type from one document to the next.
type ECSChecker struct {
	Version  string // the ECS version of the fields file, which documents must claim
	Errs     []string
	ecs      map[string]ecsFieldDef
	tmpl     map[string]string
	parents  map[string]bool // every proper prefix of a defined field
	ledger   typeLedger
	mcptrail map[string]bool // the mcptrail.* leaves seen
}

// NewECSChecker reads ECS's ecs_flat.yml (gzipped) of the given version
// and the index template that maps mcptrail.*.
func NewECSChecker(ecsFlatGz, version, template string) (*ECSChecker, error) {
	raw, err := readGz(ecsFlatGz)
	if err != nil {
		return nil, err
	}
	var fields map[string]ecsFieldDef
	if err := yaml.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("ecs_flat.yml: %w", err)
	}
	if len(fields) < 1000 {
		return nil, fmt.Errorf("ecs_flat.yml holds %d fields", len(fields))
	}
	tmpl, err := templateFields(template)
	if err != nil {
		return nil, err
	}
	c := &ECSChecker{Version: version, ecs: fields, tmpl: tmpl, parents: map[string]bool{}, mcptrail: map[string]bool{}}
	for _, names := range []func(func(string)){
		func(f func(string)) {
			for n := range c.ecs {
				f(n)
			}
		},
		func(f func(string)) {
			for n := range c.tmpl {
				f(n)
			}
		},
	} {
		names(func(n string) {
			for i := range len(n) {
				if n[i] == '.' {
					c.parents[n[:i]] = true
				}
			}
		})
	}
	return c, nil
}

// Unused lists the fields the template maps that no document checked so
// far carried.
func (c *ECSChecker) Unused() []string {
	var out []string
	for f, typ := range c.tmpl {
		if typ != "object" && !c.mcptrail[f] {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

func (c *ECSChecker) errorf(format string, a ...any) {
	c.Errs = append(c.Errs, fmt.Sprintf(format, a...))
}

// typeOf is the field's type in ECS or, under mcptrail., in the template.
func (c *ECSChecker) typeOf(path string) (string, bool) {
	if strings.HasPrefix(path, "mcptrail.") {
		t, ok := c.tmpl[path]
		if t == "object" {
			return "", false // walk into it
		}
		return t, ok
	}
	f, ok := c.ecs[path]
	return f.Type, ok
}

// Check checks one document, named doc in the errors.
func (c *ECSChecker) Check(doc string, b []byte) {
	m, err := DecodeNumbers(b)
	if err != nil {
		c.errorf("%s: %v", doc, err)
		return
	}
	c.walk(doc, "", m)
	// event.type values must be ones ECS expects for the event.category.
	cats, _ := At(m, "event.category").([]any)
	types, _ := At(m, "event.type").([]any)
	allowed := map[string]bool{}
	for _, av := range c.ecs["event.category"].AllowedValues {
		if slices.Contains(cats, any(av.Name)) {
			for _, t := range av.ExpectedEventTypes {
				allowed[t] = true
			}
		}
	}
	for _, ty := range types {
		if !allowed[fmt.Sprint(ty)] {
			c.errorf("%s: event.type %v is not expected for event.category %v", doc, ty, cats)
		}
	}
	for _, req := range []string{"@timestamp", "ecs.version"} {
		if At(m, req) == nil {
			c.errorf("%s: no %s", doc, req)
		}
	}
	// network.transport is an IANA protocol keyword (ECS: "the transport
	// layer (udp, tcp, ipv6-icmp, etc.)"); ECS lists no allowed values, so
	// these are the IANA Protocol Numbers keywords a gateway could meet.
	if v := At(m, "network.transport"); v != nil && !slices.Contains([]any{"tcp", "udp", "sctp", "dccp", "udplite", "icmp", "ipv6-icmp"}, v) {
		c.errorf("%s: network.transport %v is not an IANA transport protocol keyword", doc, v)
	}
	if v := At(m, "ecs.version"); v != c.Version {
		c.errorf("%s: ecs.version %v, but the fields are checked against %s", doc, v, c.Version)
	}
}

func (c *ECSChecker) walk(doc, prefix string, m map[string]any) {
	for k, v := range m {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		typ, ok := c.typeOf(path)
		if !ok {
			if sub, isObj := v.(map[string]any); isObj && c.parents[path] {
				c.walk(doc, path, sub)
				continue
			}
			c.errorf("%s: %s is not an ECS %s field (nor mapped by the mcptrail template): %s", doc, path, c.Version, jsonKind(v))
			continue
		}
		if strings.HasPrefix(path, "mcptrail.") {
			c.mcptrail[path] = true
		}
		if err := c.ledger.note(doc, path, v); err != nil {
			c.Errs = append(c.Errs, err.Error())
		}
		vals := []any{v}
		if arr, isArr := v.([]any); isArr && typ != "nested" {
			vals = arr
		}
		for _, e := range vals {
			if err := ecsValueFits(typ, e); err != nil {
				c.errorf("%s: %s (%s): %v", doc, path, typ, err)
			}
		}
		if def, ok := c.ecs[path]; ok && len(def.AllowedValues) > 0 {
			for _, e := range vals {
				if !slices.ContainsFunc(def.AllowedValues, func(a struct {
					Name               string   `yaml:"name"`
					ExpectedEventTypes []string `yaml:"expected_event_types"`
				}) bool {
					return a.Name == e
				}) {
					c.errorf("%s: %s = %v is not one of ECS's allowed values", doc, path, e)
				}
			}
		}
	}
}

// ecsValueFits reports whether a JSON value is one Elasticsearch indexes
// into a field of the given type.
func ecsValueFits(typ string, v any) error {
	kind := jsonKind(v)
	switch typ {
	case "keyword", "constant_keyword", "wildcard", "text", "match_only_text", "version":
		if kind != "string" {
			return fmt.Errorf("want a string, got %s", kind)
		}
	case "ip":
		if s, ok := v.(string); !ok || net.ParseIP(s) == nil {
			return fmt.Errorf("want an IP address, got %s %v", kind, v)
		}
	case "date":
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a date string, got %s", kind)
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return err
		}
	case "long", "integer", "short", "byte", "unsigned_long":
		if kind != "integer" {
			return fmt.Errorf("want an integer, got %s %v", kind, v)
		}
		n, _ := v.(json.Number).Int64()
		bits := map[string]int{"integer": 32, "short": 16, "byte": 8}[typ]
		if bits != 0 && (n >= 1<<(bits-1) || n < -(1<<(bits-1))) {
			return fmt.Errorf("%d does not fit a %s", n, typ)
		}
	case "float", "double", "half_float", "scaled_float":
		if kind != "integer" && kind != "number" {
			return fmt.Errorf("want a number, got %s", kind)
		}
	case "boolean":
		if kind != "boolean" {
			return fmt.Errorf("want a boolean, got %s", kind)
		}
	case "object", "flattened":
		if kind != "object" {
			return fmt.Errorf("want an object, got %s", kind)
		}
	case "nested":
		if !strings.HasPrefix(kind, "array<object") && kind != "object" {
			return fmt.Errorf("want objects, got %s", kind)
		}
	default:
		return fmt.Errorf("checker knows no type %q", typ)
	}
	return nil
}

// --- OCSF --------------------------------------------------------------

type ocsfAttrDef struct {
	Type        string                              `json:"type"`
	ObjectType  string                              `json:"object_type"`
	IsArray     bool                                `json:"is_array"`
	Requirement string                              `json:"requirement"`
	Sibling     string                              `json:"sibling"`
	Enum        map[string]struct{ Caption string } `json:"enum"`
	Profiles    []string                            `json:"profiles"`
	Deprecated  json.RawMessage                     `json:"@deprecated"`
}

type ocsfDef struct {
	UID         *int                   `json:"uid"`
	CategoryUID int                    `json:"category_uid"`
	Attributes  map[string]ocsfAttrDef `json:"attributes"`
	Constraints struct {
		AtLeastOne []string `json:"at_least_one"`
		JustOne    []string `json:"just_one"`
	} `json:"constraints"`
}

type ocsfTypeDef struct {
	Type   string    `json:"type"`
	Regex  string    `json:"regex"`
	MaxLen int       `json:"max_len"`
	Range  []float64 `json:"range"`
}

type ocsfSchemaFile struct {
	Version    string             `json:"version"`
	Classes    map[string]ocsfDef `json:"classes"`
	Objects    map[string]ocsfDef `json:"objects"`
	Dictionary struct {
		Types struct {
			Attributes map[string]ocsfTypeDef `json:"attributes"`
		} `json:"types"`
	} `json:"dictionary"`
}

// OCSFChecker checks OCSF events against the compiled schema: the class
// by class_uid; every attribute defined in its class or object, of its
// type (and the type's regex, length and range), within its enum;
// required attributes and the at_least_one / just_one constraints; an
// attribute of a profile only with the profile in metadata.profiles; the
// *_id beside every caption set (user.type → user.type_id), and a caption
// that agrees with its id's enum; no deprecated attribute; type_uid = class_uid*100+activity_id;
// metadata.version the schema's; and unmapped members of one type in
// every event.
type OCSFChecker struct {
	Errs   []string
	s      *ocsfSchemaFile
	ledger typeLedger
	re     map[string]*regexp.Regexp
}

// NewOCSFChecker reads a compiled OCSF schema (gzipped).
func NewOCSFChecker(compiledGz string) (*OCSFChecker, error) {
	raw, err := readGz(compiledGz)
	if err != nil {
		return nil, err
	}
	var s ocsfSchemaFile
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("OCSF schema: %w", err)
	}
	if len(s.Classes) < 50 || s.Version == "" {
		return nil, fmt.Errorf("OCSF schema: %d classes, version %q", len(s.Classes), s.Version)
	}
	return &OCSFChecker{s: &s, re: map[string]*regexp.Regexp{}}, nil
}

func (c *OCSFChecker) errorf(format string, a ...any) {
	c.Errs = append(c.Errs, fmt.Sprintf(format, a...))
}

// Check checks one event, named doc in the errors.
func (c *OCSFChecker) Check(doc string, b []byte) {
	m, err := DecodeNumbers(b)
	if err != nil {
		c.errorf("%s: %v", doc, err)
		return
	}
	c.CheckDecoded(doc, m)
}

// CheckDecoded checks an event decoded by DecodeNumbers.
func (c *OCSFChecker) CheckDecoded(doc string, m map[string]any) {
	n, _ := m["class_uid"].(json.Number)
	uid, err := n.Int64()
	if err != nil {
		c.errorf("%s: class_uid %v", doc, m["class_uid"])
		return
	}
	var class *ocsfDef
	for _, cl := range c.s.Classes {
		if cl.UID != nil && int64(*cl.UID) == uid {
			class = &cl
			break
		}
	}
	if class == nil {
		c.errorf("%s: no class %d in OCSF %s", doc, uid, c.s.Version)
		return
	}
	var profiles []string
	if md, ok := m["metadata"].(map[string]any); ok {
		if ps, ok := md["profiles"].([]any); ok {
			for _, p := range ps {
				profiles = append(profiles, fmt.Sprint(p))
			}
		}
		if md["version"] != c.s.Version {
			c.errorf("%s: metadata.version %v, checked against %s", doc, md["version"], c.s.Version)
		}
	}
	c.object(doc, "", m, class, profiles)
	num := func(k string) int64 { n, _ := m[k].(json.Number).Int64(); return n }
	if num("type_uid") != uid*100+num("activity_id") {
		c.errorf("%s: type_uid %d is not class_uid*100+activity_id = %d", doc, num("type_uid"), uid*100+num("activity_id"))
	}
	if num("category_uid") != int64(class.CategoryUID) {
		c.errorf("%s: category_uid %d, the class is in %d", doc, num("category_uid"), class.CategoryUID)
	}
	if u, ok := m["unmapped"].(map[string]any); ok {
		for k, v := range u {
			if err := c.ledger.note(doc, "unmapped."+k, v); err != nil {
				c.Errs = append(c.Errs, err.Error())
			}
		}
	}
}

func (c *OCSFChecker) object(doc, path string, m map[string]any, def *ocsfDef, profiles []string) {
	name := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	for k, v := range m {
		a, ok := def.Attributes[k]
		if !ok {
			c.errorf("%s: %s is not an attribute of OCSF %s here", doc, name(k), c.s.Version)
			continue
		}
		if a.Deprecated != nil {
			c.errorf("%s: %s is deprecated in OCSF %s: %s", doc, name(k), c.s.Version, a.Deprecated)
		}
		if len(a.Profiles) > 0 && !slices.ContainsFunc(a.Profiles, func(p string) bool { return slices.Contains(profiles, p) }) {
			c.errorf("%s: %s belongs to profile %v, not in metadata.profiles %v", doc, name(k), a.Profiles, profiles)
		}
		vals := []any{v}
		if a.IsArray {
			arr, isArr := v.([]any)
			if !isArr {
				c.errorf("%s: %s must be an array, is %s", doc, name(k), jsonKind(v))
				continue
			}
			vals = arr
		}
		for _, e := range vals {
			c.value(doc, name(k), e, a, profiles)
		}
		if a.Sibling != "" && len(a.Enum) > 0 {
			// k is an _id; its sibling the caption. A caption must agree
			// with the enum unless the id is 99 Other (the caption then
			// says what it is).
			id := fmt.Sprint(v)
			if cap, set := m[a.Sibling]; set && id != "99" {
				if e, known := a.Enum[id]; known && e.Caption != cap {
					c.errorf("%s: %s = %v but %s %s is %q", doc, name(a.Sibling), cap, name(k), id, e.Caption)
				}
			}
		}
	}
	for k, a := range def.Attributes {
		applies := len(a.Profiles) == 0 || slices.ContainsFunc(a.Profiles, func(p string) bool { return slices.Contains(profiles, p) })
		if a.Requirement == "required" && applies {
			// A profile's required attributes bind only events that
			// apply the profile.
			if _, ok := m[k]; !ok {
				c.errorf("%s: required %s missing", doc, name(k))
			}
		}
		if a.Sibling != "" && len(a.Enum) > 0 {
			if _, capSet := m[a.Sibling]; capSet {
				if _, idSet := m[k]; !idSet {
					c.errorf("%s: %s is set without %s", doc, name(a.Sibling), name(k))
				}
			}
		}
	}
	if l := def.Constraints.AtLeastOne; len(l) > 0 && !slices.ContainsFunc(l, func(k string) bool { _, ok := m[k]; return ok }) {
		c.errorf("%s: %s needs at least one of %v", doc, cmp.Or(path, "event"), l)
	}
	if l := def.Constraints.JustOne; len(l) > 0 {
		n := 0
		for _, k := range l {
			if _, ok := m[k]; ok {
				n++
			}
		}
		if n != 1 {
			c.errorf("%s: %s needs exactly one of %v, has %d", doc, cmp.Or(path, "event"), l, n)
		}
	}
}

func (c *OCSFChecker) value(doc, path string, v any, a ocsfAttrDef, profiles []string) {
	if a.Type == "object_t" {
		sub, ok := v.(map[string]any)
		if !ok {
			c.errorf("%s: %s must be an object, is %s", doc, path, jsonKind(v))
			return
		}
		if a.ObjectType == "object" {
			return // free-form (unmapped)
		}
		def, ok := c.s.Objects[a.ObjectType]
		if !ok {
			c.errorf("%s: %s: no object %q in the schema", doc, path, a.ObjectType)
			return
		}
		c.object(doc, path, sub, &def, profiles)
		return
	}
	typ := a.Type
	td := c.s.Dictionary.Types.Attributes[typ]
	base := typ
	if td.Type != "" {
		base = td.Type
	}
	if bt := c.s.Dictionary.Types.Attributes[base]; bt.Type != "" {
		base = bt.Type // timestamp_t → long_t, port_t → integer_t
	}
	kind := jsonKind(v)
	switch base {
	case "string_t":
		if kind != "string" {
			c.errorf("%s: %s (%s) must be a string, is %s", doc, path, typ, kind)
			return
		}
		s := v.(string)
		if td.MaxLen > 0 && len(s) > td.MaxLen {
			c.errorf("%s: %s (%s) longer than %d", doc, path, typ, td.MaxLen)
		}
		if td.Regex != "" {
			re, ok := c.re[typ]
			if !ok {
				re, _ = regexp.Compile(td.Regex) // nil: a regex RE2 cannot read
				c.re[typ] = re
			}
			if re != nil && !re.MatchString(s) {
				c.errorf("%s: %s = %q does not match %s", doc, path, s, typ)
			}
		}
	case "integer_t", "long_t":
		if kind != "integer" {
			c.errorf("%s: %s (%s) must be an integer, is %s %v", doc, path, typ, kind, v)
			return
		}
		n, _ := v.(json.Number).Int64()
		if base == "integer_t" && (n > 1<<31-1 || n < -(1<<31)) {
			c.errorf("%s: %s = %d overflows an integer", doc, path, n)
		}
		if len(td.Range) == 2 && (float64(n) < td.Range[0] || float64(n) > td.Range[1]) {
			c.errorf("%s: %s = %d outside %v", doc, path, n, td.Range)
		}
	case "float_t":
		if kind != "integer" && kind != "number" {
			c.errorf("%s: %s must be a number, is %s", doc, path, kind)
		}
	case "boolean_t":
		if kind != "boolean" {
			c.errorf("%s: %s must be a boolean, is %s", doc, path, kind)
		}
	case "json_t":
	default:
		c.errorf("%s: %s: checker knows no type %q", doc, path, typ)
	}
	if len(a.Enum) > 0 {
		if _, ok := a.Enum[fmt.Sprint(v)]; !ok {
			c.errorf("%s: %s = %v is not in its enum", doc, path, v)
		}
	}
}

// --- CEF ---------------------------------------------------------------

// CEFDictionary is the part of the CEF key dictionary a file transcribes
// (siem/testdata/cef-key-dictionary.txt): per key its type and length limit.
type CEFDictionary map[string]CEFKey

// CEFKey is one key of the dictionary.
type CEFKey struct {
	Type string // String, Integer, Long, IPv4, IPv6, TimeStamp
	Max  int    // length limit of a String (0: none given)
}

// LoadCEFDictionary reads lines of "key type length" ("-": no length);
// "#" starts a comment; "header:" keys are the header fields.
func LoadCEFDictionary(path string) (CEFDictionary, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d := CEFDictionary{}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("dictionary line %q", line)
		}
		n := 0
		if f[2] != "-" {
			if n, err = strconv.Atoi(f[2]); err != nil {
				return nil, fmt.Errorf("dictionary line %q", line)
			}
		}
		d[f[0]] = CEFKey{Type: f[1], Max: n}
	}
	return d, nil
}

// Violations lists what in a CEF line breaks the dictionary: a key it does
// not have, a value of the wrong type or over its length (bytes of the
// unescaped value), a label without its field, a header field too long.
func (d CEFDictionary) Violations(line string) []error {
	r, err := ParseCEF(line)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for i, h := range []string{"deviceVendor", "deviceProduct", "deviceVersion", "deviceEventClassId", "name"} {
		if k := d["header:"+h]; len(r.Header[i]) > k.Max {
			errs = append(errs, fmt.Errorf("header %s is %d bytes, the limit is %d", h, len(r.Header[i]), k.Max))
		}
	}
	for _, key := range r.Keys {
		v := r.Ext[key]
		k, ok := d[key]
		if !ok {
			errs = append(errs, fmt.Errorf("%s is not a key of the CEF dictionary", key))
			continue
		}
		switch k.Type {
		case "String":
			if len(v) > k.Max {
				errs = append(errs, fmt.Errorf("%s is %d bytes, the limit is %d", key, len(v), k.Max))
			}
		case "Integer", "Long", "TimeStamp":
			bits := 64
			if k.Type == "Integer" {
				bits = 32
			}
			if _, err := strconv.ParseInt(v, 10, bits); err != nil {
				errs = append(errs, fmt.Errorf("%s = %q is not a %s", key, v, k.Type))
			}
		case "IPv4":
			if ip := net.ParseIP(v); ip == nil || ip.To4() == nil {
				errs = append(errs, fmt.Errorf("%s = %q is not an IPv4 address", key, v))
			}
		case "IPv6":
			if ip := net.ParseIP(v); ip == nil || ip.To4() != nil {
				errs = append(errs, fmt.Errorf("%s = %q is not an IPv6 address", key, v))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: unknown type %q", key, k.Type))
		}
		if strings.HasSuffix(key, "Label") && r.Ext[strings.TrimSuffix(key, "Label")] == "" {
			errs = append(errs, fmt.Errorf("%s without its field", key))
		}
	}
	return errs
}
