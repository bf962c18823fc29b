package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decodeStrict decodes YAML into cfg, recording every key the Config does not
// know (with its dotted path and line) and every value of the wrong type.
func decodeStrict(raw []byte, cfg *Config, problems *Problems) error {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file means all defaults
		}
		return fmt.Errorf("parse config: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("parse config: line %d: the top level must be a mapping of keys", root.Line)
	}
	findUnknownKeys(root, reflect.TypeOf(*cfg), "", problems)
	if err := root.Decode(cfg); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return fmt.Errorf("parse config: %w", err)
		}
		for _, msg := range te.Errors {
			problems.Add("", msg)
		}
	}
	return nil
}

// findUnknownKeys walks a mapping node alongside the struct type it decodes
// into and records every key the struct has no field for.
func findUnknownKeys(n *yaml.Node, t reflect.Type, path string, problems *Problems) {
	if n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct {
		return
	}
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if name := yamlName(f); name != "" {
			fields[name] = f.Type
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		keyPath := joinKey(path, key.Value)
		ft, ok := fields[key.Value]
		if !ok {
			problems.Add(keyPath, fmt.Sprintf("unknown key (line %d)", key.Line))
			continue
		}
		if val.Kind == yaml.SequenceNode && ft.Kind() == reflect.Slice {
			for j, item := range val.Content {
				findUnknownKeys(item, ft.Elem(), fmt.Sprintf("%s[%d]", keyPath, j), problems)
			}
			continue
		}
		findUnknownKeys(val, ft, keyPath, problems)
	}
}

// applyEnv overrides any scalar or list key from the environment:
// NCS_GATEWAY_<SECTION>_<KEY>, for example NCS_GATEWAY_NATS_URL or
// NCS_GATEWAY_FIREWALL_PORTS="8443,9443". Lists are comma-separated; lists
// of mappings (nats.embedded_users) come from the file only.
func applyEnv(v reflect.Value, prefix, path string, lookup func(string) (string, bool), problems *Problems) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" {
			continue
		}
		key := joinKey(path, name)
		env := prefix + strings.ToUpper(name)
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct {
			applyEnv(fv, env+"_", key, lookup, problems)
			continue
		}
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			if _, ok := lookup(env); ok {
				problems.Add(key, fmt.Sprintf("%s is not read: a list of mappings comes from the config file only", env))
			}
			continue
		}
		s, ok := lookup(env)
		if !ok {
			continue
		}
		if err := setFromString(fv, s); err != nil {
			problems.Add(key, fmt.Sprintf("from %s: %v", env, err))
		}
	}
}

// setFromString parses s into the kinds of field a Config holds.
func setFromString(v reflect.Value, s string) error {
	s = strings.TrimSpace(s)
	switch {
	case v.Type() == reflect.TypeOf(time.Duration(0)):
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Slice:
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		out := reflect.MakeSlice(v.Type(), len(parts), len(parts))
		for i, p := range parts {
			if err := setFromString(out.Index(i), p); err != nil {
				return err
			}
		}
		v.Set(out)
	case v.Kind() == reflect.Uint16:
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			return err
		}
		v.SetUint(n)
	default:
		return fmt.Errorf("unsupported kind %s", v.Kind())
	}
	return nil
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
