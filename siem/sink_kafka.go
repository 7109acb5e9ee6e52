package siem

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mcptrail/mcptrail/store"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Kafka record headers. A record's key is the origin store's id, so that
// one origin's records keep their order in one partition.
const (
	HeaderOrigin = "origin" // the origin store's id (also the key)
	HeaderHost   = "host"   // the origin gateway's host name
	HeaderSeq    = "seq"    // the event's seq; a checkpoint's size
	HeaderKind   = "kind"   // the event's kind; "checkpoint" for a checkpoint
	HeaderFormat = "format" // jsonl, ocsf or ecs
	// HeaderExact is the event's JSON as the store hashed it, present when
	// the value differs: the value escapes, for terminals, characters the
	// hashed JSON holds raw, which would make a collector's hash check fail.
	HeaderExact = "exact"
	// HeaderVerifierKey is, on a checkpoint, the verifier key of the
	// origin's signing key (a collector pins it on first sight).
	HeaderVerifierKey = "verifier_key"
	// HeaderSHA256 and HeaderSize are, on a pre-state record, the blob's
	// reference (store.PrestateRef) and length. Its seq is the call's (the
	// request's) seq.
	HeaderSHA256 = "sha256"
	HeaderSize   = "size"
)

// KindPrestate is the kind header of a pre-state record: the value is the
// blob a call's outcome names, or empty when it is larger than the sink's
// max_prestate (then only its hash and size travel).
const KindPrestate = "prestate"

// kafkaSink produces each event as one record with an idempotent
// producer and acks from every in-sync replica: Send returns once the
// brokers have acknowledged every record, so the forwarder's cursor moves
// only past what Kafka holds. A failure fails every later record of the
// partition too (franz-go keeps a partition's order), so a retry from the
// cursor redelivers in order.
type kafkaSink struct {
	conn   *KafkaConn
	origin string
	host   string
	vkey   string
	format Format
	// prestates reads a call's pre-state; nil unless the format is jsonl
	// (the collector's) and the daemon wired the store.
	prestates func(call uint64) ([]byte, error)
	client    *kgo.Client
}

// kafkaSinkParams are a Kafka sink's options besides the common ones: the
// connection's (ParseKafkaURL) and max_prestate.
var kafkaSinkParams = append(slices.Clone(kafkaParams), "max_prestate")

// parseKafkaSinkURL reads kafka://[USER:PASSWORD@]HOST:PORT[,...]/TOPIC.
func parseKafkaSinkURL(s *SinkSpec) error {
	// jsonl by default: what a collector reads.
	if err := s.parseCommon(kafkaSinkParams, cmp.Or(s.query.Get("format"), "jsonl")); err != nil {
		return err
	}
	if !s.Format.JSON() {
		return s.errorf("format %s: a Kafka record is one JSON object (jsonl, ocsf or ecs)", s.Format)
	}
	var err error
	if s.kafka, err = parseKafka(s.u, s.query, s.secret, s.Redacted); err != nil {
		return err
	}
	if s.kafka.MaxPrestate, err = maxPrestate(s.query.Get("max_prestate")); err != nil {
		return s.errorf("%v", err)
	}
	return nil
}

func newKafkaSink(spec *SinkSpec, o Options) (*kafkaSink, error) {
	o = o.withDefaults()
	origin := o.Origin
	if origin == "" {
		origin = o.Hostname
	}
	s := &kafkaSink{conn: spec.kafka, origin: origin, host: o.Hostname, vkey: o.OriginKey, format: spec.Format}
	if spec.Format == FormatJSONL {
		s.prestates = o.Prestates
	}
	return s, nil
}

func (s *kafkaSink) dial() error {
	if s.client != nil {
		return nil
	}
	opts, err := s.conn.ClientOpts()
	if err != nil {
		return err
	}
	opts = append(opts,
		kgo.DefaultProduceTopic(s.conn.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence (franz-go's default) needs it too
		kgo.RecordDeliveryTimeout(s.conn.Timeout),
		kgo.ProducerLinger(0), // the forwarder batches already
		kgo.ProducerBatchCompression(kgo.ZstdCompression(), kgo.SnappyCompression(), kgo.NoCompression()),
	)
	c, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka %s: %w", s.conn.Redacted, err)
	}
	s.client = c
	return nil
}

func (s *kafkaSink) Send(ctx context.Context, items []Item) error {
	if len(items) == 0 {
		return nil
	}
	if err := s.dial(); err != nil {
		return err
	}
	recs := make([]*kgo.Record, 0, len(items))
	for _, it := range items {
		rec, err := s.record(it)
		if err != nil {
			return err
		}
		recs = append(recs, rec)
		ps, err := s.prestate(it.Event)
		if err != nil {
			return err
		}
		if ps != nil {
			recs = append(recs, ps) // after the outcome that names it, in its partition
		}
	}
	// Not ProduceSync: an idempotent producer keeps retrying a request the
	// brokers never answered (failing it could break its sequence), so a
	// cluster that is down would hold Send, and the forwarder's Stop,
	// forever. After the timeout the forwarder resets the sink, and
	// closing the client fails what is still buffered.
	ctx, cancel := context.WithTimeout(ctx, s.conn.Timeout)
	defer cancel()
	results := make(chan error, len(recs))
	for _, rec := range recs {
		s.client.Produce(ctx, rec, func(_ *kgo.Record, err error) { results <- err })
	}
	var first error
	for range recs {
		select {
		case err := <-results:
			if err != nil && first == nil {
				first = err
			}
		case <-ctx.Done():
			return fmt.Errorf("kafka %s: not acknowledged within %s", s.conn.Redacted, s.conn.Timeout)
		}
	}
	if first != nil {
		return fmt.Errorf("kafka %s: %w", s.conn.Redacted, first)
	}
	return nil
}

// record builds the record of one item.
func (s *kafkaSink) record(it Item) (*kgo.Record, error) {
	ev := it.Event
	hs := []kgo.RecordHeader{
		{Key: HeaderOrigin, Value: []byte(s.origin)},
		{Key: HeaderHost, Value: []byte(s.host)},
		{Key: HeaderSeq, Value: strconv.AppendUint(nil, ev.Seq, 10)},
		{Key: HeaderKind, Value: []byte(ev.Kind)},
		{Key: HeaderFormat, Value: []byte(s.format)},
	}
	if ev.Kind == KindCheckpoint && s.vkey != "" {
		hs = append(hs, kgo.RecordHeader{Key: HeaderVerifierKey, Value: []byte(s.vkey)})
	}
	if s.format == FormatJSONL {
		exact, err := MarshalExact(ev)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(exact, it.Body) {
			hs = append(hs, kgo.RecordHeader{Key: HeaderExact, Value: exact})
		}
	}
	return &kgo.Record{Key: []byte(s.origin), Value: it.Body, Headers: hs}, nil
}

// prestate builds the record of the pre-state ev names, if ev is an
// outcome that names one and the sink ships them. A blob larger than
// max_prestate travels as its hash and size only; one whose bytes do not
// match the outcome's hash (the store's copy damaged) is not shipped
// either, so the collector says it is missing rather than merge it.
func (s *kafkaSink) prestate(ev *store.Event) (*kgo.Record, error) {
	if s.prestates == nil || ev.Call == 0 || !strings.HasPrefix(ev.Prestate, "sha256:") {
		return nil, nil
	}
	data, err := s.prestates(ev.Call)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	size := len(data)
	if size > s.conn.MaxPrestate || store.PrestateRef(data) != ev.Prestate {
		data = nil
	}
	hs := []kgo.RecordHeader{
		{Key: HeaderOrigin, Value: []byte(s.origin)},
		{Key: HeaderHost, Value: []byte(s.host)},
		{Key: HeaderSeq, Value: strconv.AppendUint(nil, ev.Call, 10)},
		{Key: HeaderKind, Value: []byte(KindPrestate)},
		{Key: HeaderSHA256, Value: []byte(ev.Prestate)},
		{Key: HeaderSize, Value: strconv.AppendInt(nil, int64(size), 10)},
	}
	return &kgo.Record{Key: []byte(s.origin), Value: data, Headers: hs}, nil
}

// MarshalExact is the event's JSON line before the terminal escapes that
// export and the jsonl format add: decoded, it gives back the very values
// the store hashed (the escapes rewrite raw bodies, which decoding keeps
// as they are).
func MarshalExact(ev *store.Event) ([]byte, error) { return marshalRaw(ev) }

func (s *kafkaSink) Reset() {
	if s.client != nil {
		s.client.Close()
		s.client = nil
	}
}

func (s *kafkaSink) Close() error {
	s.Reset()
	return nil
}
