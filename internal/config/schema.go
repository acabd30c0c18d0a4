package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Field describes one configuration field of the schema.
type Field struct {
	Key     string // YAML key path, e.g. "dns.listen"
	Env     string // environment variable, e.g. "MOAT_DNS_LISTEN"; "" if none
	Flag    string // flag of `moat serve`, e.g. "dns-listen"; "" if none
	Type    string // "string", "bool", "duration", "list", "map"
	Default string // production default, rendered
	DevDef  string // default under --dev, rendered
	Doc     string
	Bool    bool // the flag takes no value

	index []int
}

// Fields lists the schema in declaration order.
func Fields() []Field {
	var out []Field
	def, dev := reflect.ValueOf(Default()), reflect.ValueOf(DevDefault())
	var walk func(t reflect.Type, index []int, keyPrefix, envPrefix string)
	walk = func(t reflect.Type, index []int, keyPrefix, envPrefix string) {
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			idx := append(append([]int{}, index...), i)
			key := keyPrefix + sf.Tag.Get("yaml")
			if sf.Type.Kind() == reflect.Struct && sf.Type != reflect.TypeOf(time.Duration(0)) {
				walk(sf.Type, idx, key+".", envPrefix+sf.Tag.Get("envPrefix"))
				continue
			}
			f := Field{Key: key, Flag: sf.Tag.Get("flag"), Doc: sf.Tag.Get("doc"), index: idx}
			if e := sf.Tag.Get("env"); e != "" && e != "-" {
				f.Env = "MOAT_" + envPrefix + e
			}
			switch {
			case sf.Type == reflect.TypeOf(time.Duration(0)):
				f.Type = "duration"
			case sf.Type == reflect.TypeOf(Period(0)):
				f.Type = "period"
			case sf.Type.Kind() == reflect.Bool:
				f.Type, f.Bool = "bool", true
			case sf.Type.Kind() == reflect.Slice:
				f.Type = "list"
			case sf.Type.Kind() == reflect.Map:
				f.Type = "map"
			case sf.Type.Kind() == reflect.Int64:
				f.Type = "int"
			case sf.Type.Kind() == reflect.Float64:
				f.Type = "float"
			default:
				f.Type = "string"
			}
			f.Default = render(def.FieldByIndex(idx))
			f.DevDef = render(dev.FieldByIndex(idx))
			out = append(out, f)
		}
	}
	walk(reflect.TypeOf(Config{}), nil, "", "")
	return out
}

func render(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Slice:
		var parts []string
		for i := 0; i < v.Len(); i++ {
			parts = append(parts, fmt.Sprint(v.Index(i).Interface()))
		}
		return strings.Join(parts, ",")
	case reflect.Map:
		if v.Len() == 0 {
			return ""
		}
		return fmt.Sprint(v.Interface())
	case reflect.Int64:
		if d, ok := v.Interface().(time.Duration); ok {
			return d.String()
		}
	}
	return fmt.Sprint(v.Interface())
}

// setFlag sets the field whose flag tag is name from its string value.
func setFlag(c *Config, name, value string) error {
	for _, f := range Fields() {
		if f.Flag != name {
			continue
		}
		v := reflect.ValueOf(c).Elem().FieldByIndex(f.index)
		switch f.Type {
		case "string":
			v.SetString(value)
		case "bool":
			b, err := strconv.ParseBool(value)
			if err != nil {
				return invalid("--"+name, value, "want true or false")
			}
			v.SetBool(b)
		case "duration":
			d, err := time.ParseDuration(value)
			if err != nil {
				return invalid("--"+name, value, "want a duration such as 30s or 5m")
			}
			v.SetInt(int64(d))
		case "int":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				return invalid("--"+name, value, "want an integer")
			}
			v.SetInt(n)
		case "float":
			x, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return invalid("--"+name, value, "want a number")
			}
			v.SetFloat(x)
		case "list":
			var items []string
			for _, s := range strings.Split(value, ",") {
				if s = strings.TrimSpace(s); s != "" {
					items = append(items, s)
				}
			}
			v.Set(reflect.ValueOf(items))
		default:
			return fmt.Errorf("config: flag --%s has unsupported type %s", name, f.Type)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown flag --%s", ErrInvalid, name)
}

// Reference renders the schema as a Markdown table for the README.
func Reference() string {
	var b strings.Builder
	b.WriteString("| key (YAML) | environment | flag | default | `--dev` default | meaning |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, f := range Fields() {
		flag := ""
		if f.Flag != "" {
			flag = "`--" + f.Flag + "`"
		}
		envv := ""
		if f.Env != "" {
			envv = "`" + f.Env + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", f.Key, envv, flag, code(f.Default), code(f.DevDef), f.Doc)
	}
	return b.String()
}

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + s + "`"
}

// FlagNames returns the flag names of the schema, sorted.
func FlagNames() []string {
	var names []string
	for _, f := range Fields() {
		if f.Flag != "" {
			names = append(names, f.Flag)
		}
	}
	sort.Strings(names)
	return names
}

// checkEnv checks the MOAT_ variables that need conversion, so that an
// error names the variable and its value.
func checkEnv(m map[string]string) error {
	for _, f := range Fields() {
		v, ok := m[f.Env]
		if !ok || f.Env == "" {
			continue
		}
		switch f.Type {
		case "duration":
			if _, err := time.ParseDuration(v); err != nil {
				return invalid("environment "+f.Env, v, "want a duration such as 30s or 5m")
			}
		case "period":
			if _, err := ParsePeriod(v); err != nil {
				return invalid("environment "+f.Env, v, "want a period such as 90d or 2160h, or 0")
			}
		case "int":
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return invalid("environment "+f.Env, v, "want an integer")
			}
		case "float":
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				return invalid("environment "+f.Env, v, "want a number")
			}
		case "bool":
			if _, err := strconv.ParseBool(v); err != nil {
				return invalid("environment "+f.Env, v, "want true or false")
			}
		}
	}
	return nil
}
