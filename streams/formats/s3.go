package formats

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// Types of storage events other than object created and removed. Sluice
// documents only plugins.TypeStorageCreated and plugins.TypeStorageRemoved; a
// bucket may be configured to send more, and dropping those silently would
// surprise, so each family of S3 and MinIO event names gets its own type
// (a trigger's filter on "type" keeps only the ones a function wants):
//
//	ObjectCreated:*                             sluice.storage.object.created
//	ObjectRemoved:*, LifecycleExpiration:*      sluice.storage.object.removed
//	ObjectRestore:*                             sluice.storage.object.restored
//	LifecycleTransition, ObjectTransition:*     sluice.storage.object.transitioned
//	IntelligentTiering                          sluice.storage.object.tiered
//	ObjectTagging:*                             sluice.storage.object.tagged
//	ObjectAcl:*                                 sluice.storage.object.acl
//	ObjectAccessed:* (MinIO)                    sluice.storage.object.accessed
//	Replication:*                               sluice.storage.object.replication
//	ReducedRedundancyLostObject                 sluice.storage.object.lost
//	anything else                               sluice.storage.object.other
//
// Expirations count as removals: for the function the object is gone either
// way, and eventName still tells them apart.
const (
	TypeStorageRestored     = "sluice.storage.object.restored"
	TypeStorageTransitioned = "sluice.storage.object.transitioned"
	TypeStorageTiered       = "sluice.storage.object.tiered"
	TypeStorageTagged       = "sluice.storage.object.tagged"
	TypeStorageACL          = "sluice.storage.object.acl"
	TypeStorageAccessed     = "sluice.storage.object.accessed"
	TypeStorageReplication  = "sluice.storage.object.replication"
	TypeStorageLost         = "sluice.storage.object.lost"
	TypeStorageOther        = "sluice.storage.object.other"
)

// StorageType returns the envelope type of an S3 or MinIO event name, with
// or without MinIO's "s3:" prefix: ObjectCreated:Put and
// s3:ObjectCreated:Put are both plugins.TypeStorageCreated.
func StorageType(eventName string) string {
	name := strings.TrimPrefix(eventName, "s3:")
	family, _, _ := strings.Cut(name, ":")
	switch family {
	case "ObjectCreated":
		return plugins.TypeStorageCreated
	case "ObjectRemoved", "LifecycleExpiration":
		return plugins.TypeStorageRemoved
	case "ObjectRestore":
		return TypeStorageRestored
	case "LifecycleTransition", "ObjectTransition":
		return TypeStorageTransitioned
	case "IntelligentTiering":
		return TypeStorageTiered
	case "ObjectTagging":
		return TypeStorageTagged
	case "ObjectAcl":
		return TypeStorageACL
	case "ObjectAccessed":
		return TypeStorageAccessed
	case "Replication":
		return TypeStorageReplication
	case "ReducedRedundancyLostObject":
		return TypeStorageLost
	}
	return TypeStorageOther
}

// DecodeStorageNotification decodes the body of a storage webhook: an S3
// event notification ({"Records":[…]}), a MinIO bucket notification
// ({"EventName":…,"Key":…,"Records":[…]}) or S3's s3:TestEvent, which
// yields no events and no error. Each record becomes one envelope:
//
//   - type: StorageType(eventName)
//   - data: the record as given, with s3.object.key URL-decoded (S3 and
//     MinIO form-encode keys: "+" is a space); eventName, sequencer and
//     every other field are kept
//   - subject and partitionkey: "bucket/key", so the events of one object
//     stay in order
//   - source: eventSource.awsRegion.bucket, as the CloudEvents adapter for
//     S3 builds it ("aws:s3.us-east-1.photos", "minio:s3..photos")
//   - id: a hash of the record's identity (bucket, key, versionId,
//     sequencer, eventName, eventTime, request id): stable when S3 delivers
//     a record twice or the same record arrives through Kafka, distinct
//     between the records of one multi-object request
//   - time: eventTime
//
// A malformed body or record is an error wrapping ErrMalformed whose
// *DecodeError names the path of the bad field; one bad record fails the
// whole body, so nothing is half accepted. It is safe for concurrent use.
func DecodeStorageNotification(body []byte) ([]*plugins.Event, error) {
	return decodeS3(body)
}

// S3 is the Decoder of Kafka triggers with format: s3, for the MinIO bucket
// notifications MinIO publishes to Kafka (the same JSON as its webhook).
// Each record of a value becomes one envelope as DecodeStorageNotification
// builds it, carrying the Kafka record's topic, partition, offset and
// headers. A value that is not a notification is an error wrapping
// ErrMalformed. The zero value is ready; it is safe for concurrent use.
type S3 struct{}

var _ Decoder = S3{}

// Decode implements Decoder.
func (S3) Decode(r *Record) ([]*plugins.Event, error) {
	evs, err := decodeS3(r.Value)
	if err != nil {
		return nil, err
	}
	for _, ev := range evs {
		setKafka(ev, r)
	}
	return evs, nil
}

// setKafka sets the Kafka extensions of an envelope decoded from r.
func setKafka(ev *plugins.Event, r *Record) {
	if r.Topic == "" {
		return
	}
	ev.KafkaTopic = r.Topic
	ev.KafkaPartition = r.Partition
	ev.KafkaOffset = r.Offset
	ev.KafkaHeaders = r.Headers
}

type s3Decoder struct{}

func (d *s3Decoder) errf(p jsonPath, format string, args ...any) error {
	return &DecodeError{Format: "s3", Path: p.String(), Msg: fmt.Sprintf(format, args...)}
}

func decodeS3(body []byte) ([]*plugins.Event, error) {
	var d s3Decoder
	var top any
	if err := decodeJSON(body, &top); err != nil {
		return nil, d.errf(nil, "not JSON: %v", err)
	}
	obj, ok := top.(map[string]any)
	if !ok {
		return nil, d.errf(nil, "want a JSON object, got %s", describe(top))
	}
	recs, ok := obj["Records"]
	if !ok {
		if obj["Event"] == "s3:TestEvent" {
			return nil, nil
		}
		return nil, d.errf(nil, `not an S3 or MinIO notification: no "Records"`)
	}
	list, ok := recs.([]any)
	if !ok {
		return nil, d.errf(jsonPath{"Records"}, "want an array, got %s", describe(recs))
	}
	evs := make([]*plugins.Event, 0, len(list))
	for i, rec := range list {
		ev, err := d.record(jsonPath{"Records"}.index(i), rec)
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// decodeJSON decodes one JSON value keeping numbers as json.Number, so sizes
// and other numbers are re-encoded exactly as they came.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("unexpected data after the JSON value")
	}
	if _, err := dec.Token(); err == nil {
		return fmt.Errorf("unexpected data after the JSON value")
	}
	return nil
}

func (d *s3Decoder) object(p jsonPath, parent map[string]any, key string, required bool) (map[string]any, error) {
	v, ok := parent[key]
	if !ok || v == nil {
		if required {
			return nil, d.errf(p.key(key), "missing")
		}
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, d.errf(p.key(key), "want an object, got %s", describe(v))
	}
	return m, nil
}

func (d *s3Decoder) str(p jsonPath, parent map[string]any, key string, required bool) (string, error) {
	v, ok := parent[key]
	if !ok || v == nil {
		if required {
			return "", d.errf(p.key(key), "missing")
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", d.errf(p.key(key), "want a string, got %s", describe(v))
	}
	if required && s == "" {
		return "", d.errf(p.key(key), "empty")
	}
	return s, nil
}

func (d *s3Decoder) record(p jsonPath, v any) (*plugins.Event, error) {
	rec, ok := v.(map[string]any)
	if !ok {
		return nil, d.errf(p, "want an object, got %s", describe(v))
	}
	name, err := d.str(p, rec, "eventName", true)
	if err != nil {
		return nil, err
	}
	ts, err := d.str(p, rec, "eventTime", true)
	if err != nil {
		return nil, err
	}
	when, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return nil, d.errf(p.key("eventTime"), "%q is not an RFC 3339 time", ts)
	}
	src, err := d.str(p, rec, "eventSource", false)
	if err != nil {
		return nil, err
	}
	region, err := d.str(p, rec, "awsRegion", false)
	if err != nil {
		return nil, err
	}
	if _, err := d.str(p, rec, "eventVersion", false); err != nil {
		return nil, err
	}
	for _, k := range []string{"userIdentity", "requestParameters"} {
		if _, err := d.object(p, rec, k, false); err != nil {
			return nil, err
		}
	}
	resp, err := d.object(p, rec, "responseElements", false)
	if err != nil {
		return nil, err
	}
	requestID, _ := resp["x-amz-request-id"].(string)

	ps3 := p.key("s3")
	s3, err := d.object(p, rec, "s3", true)
	if err != nil {
		return nil, err
	}
	pb := ps3.key("bucket")
	bucket, err := d.object(ps3, s3, "bucket", true)
	if err != nil {
		return nil, err
	}
	bucketName, err := d.str(pb, bucket, "name", true)
	if err != nil {
		return nil, err
	}
	if _, err := d.str(pb, bucket, "arn", false); err != nil {
		return nil, err
	}
	po := ps3.key("object")
	obj, err := d.object(ps3, s3, "object", true)
	if err != nil {
		return nil, err
	}
	rawKey, err := d.str(po, obj, "key", false)
	if err != nil {
		return nil, err
	}
	if _, ok := obj["key"]; !ok {
		return nil, d.errf(po.key("key"), "missing")
	}
	key, err := url.QueryUnescape(rawKey)
	if err != nil {
		return nil, d.errf(po.key("key"), "%q is not URL-encoded: %v", rawKey, err)
	}
	var ids [3]string
	for i, k := range []string{"eTag", "versionId", "sequencer"} {
		if ids[i], err = d.str(po, obj, k, false); err != nil {
			return nil, err
		}
	}
	if size, ok := obj["size"]; ok && size != nil {
		if _, isNum := size.(json.Number); !isNum {
			return nil, d.errf(po.key("size"), "want a number, got %s", describe(size))
		}
	}
	obj["key"] = key

	data, err := marshalJSON(rec)
	if err != nil {
		return nil, d.errf(p, "cannot encode: %v", err)
	}
	if src == "" {
		src = "s3"
	}
	subject := bucketName + "/" + key
	return &plugins.Event{
		ID:              hashID(src, region, bucketName, key, ids[1], ids[2], name, ts, requestID),
		Source:          src + "." + region + "." + bucketName,
		Type:            StorageType(name),
		Time:            when,
		Subject:         subject,
		DataContentType: "application/json",
		DataValidJSON:   true, // built by encoding/json or a fuzzed encoder here
		Data:            data,
		PartitionKey:    subject,
	}, nil
}

// marshalJSON encodes v compactly without encoding/json's HTML escaping:
// functions should see keys such as "a&b.png" as they are.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// hashID derives a stable event id from the parts that identify a record:
// the first 128 bits of their SHA-256, in hex.
func hashID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
