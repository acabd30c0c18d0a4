package policyserver

import (
	"context"
	"log/slog"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newZapLogger returns a zap logger whose entries go to h, so that
// certmagic (which logs through zap) writes nothing on its own.
func newZapLogger(h slog.Handler) *zap.Logger {
	return zap.New(&slogCore{h: h})
}

// slogCore is a zapcore.Core writing to a slog.Handler. Levels map to the
// nearest slog level (DPanic, Panic and Fatal become Error); the zap logger
// name becomes the attribute "logger".
type slogCore struct {
	h slog.Handler
}

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), slogLevel(l))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	if len(fields) == 0 {
		return c
	}
	return &slogCore{h: c.h.WithAttrs(slogAttrs(nil, fields))}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	r := slog.NewRecord(e.Time, slogLevel(e.Level), e.Message, 0)
	attrs := make([]slog.Attr, 0, len(fields)+1)
	if e.LoggerName != "" {
		attrs = append(attrs, slog.String("logger", e.LoggerName))
	}
	r.AddAttrs(slogAttrs(attrs, fields)...)
	return c.h.Handle(context.Background(), r)
}

func (c *slogCore) Sync() error { return nil }

// slogAttrs appends the zap fields to dst as slog attributes, keeping the
// common scalar types and falling back to zap's own encoding for the rest.
func slogAttrs(dst []slog.Attr, fields []zapcore.Field) []slog.Attr {
	for _, f := range fields {
		switch f.Type {
		case zapcore.SkipType:
		case zapcore.StringType:
			dst = append(dst, slog.String(f.Key, f.String))
		case zapcore.BoolType:
			dst = append(dst, slog.Bool(f.Key, f.Integer == 1))
		case zapcore.Int64Type, zapcore.Int32Type, zapcore.Int16Type, zapcore.Int8Type:
			dst = append(dst, slog.Int64(f.Key, f.Integer))
		case zapcore.Uint64Type, zapcore.Uint32Type, zapcore.Uint16Type, zapcore.Uint8Type:
			dst = append(dst, slog.Uint64(f.Key, uint64(f.Integer))) //nolint:gosec // zap stores unsigned fields in Integer by this conversion
		case zapcore.DurationType:
			dst = append(dst, slog.Duration(f.Key, time.Duration(f.Integer)))
		case zapcore.ErrorType:
			if err, ok := f.Interface.(error); ok && err != nil {
				dst = append(dst, slog.String(f.Key, err.Error()))
			}
		default:
			enc := zapcore.NewMapObjectEncoder()
			f.AddTo(enc)
			for k, v := range enc.Fields {
				dst = append(dst, slog.Any(k, v))
			}
		}
	}
	return dst
}
