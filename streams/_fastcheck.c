/* streams._fastcheck: the worker's fast accept path for measurement messages.
 *
 * check(payload, layouts, now_ms, max_future_ms, max_readings) reads one message written with
 * a known layout of the measurement schema and, only when it is well formed and passes every
 * rule of streams/validate.py, returns (device_id, event_time, seq, readings, body): body is
 * the message's Avro body in the newest schema version (the payload's bytes after the header,
 * plus the layout's suffix). Anything else — an unknown header, a malformed or trailing byte,
 * any rule broken, a repeated map key, a map larger than FAST_MAX_READINGS — returns None, and
 * the Python path (fastavro + Validator) decides: dead letters always come from there.
 *
 * layouts maps a header (the 8 fingerprint bytes of single-object encoding, or the 5 bytes of
 * Confluent framing) to (body_start, layout, suffix); layout 1 is the fields device_id,
 * event_time, seq, readings, firmware; layout 2 adds site (a union of null and string).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define FAST_MAX_READINGS 128
#define MAX_ID_LENGTH 128
#define MAX_METRIC_LENGTH 64
#define MAX_LABEL_LENGTH 128
#define EARLIEST_EVENT_MS 978307200000LL

typedef struct {
    const unsigned char *at;
    const unsigned char *end;
} Cursor;

/* An Avro long (zig-zag varint); 0 when it does not fit 64 bits or the input ends. */
static int read_long(Cursor *c, int64_t *out) {
    uint64_t value = 0;
    int shift = 0;
    while (c->at < c->end) {
        unsigned char byte = *c->at++;
        if (shift == 63 && (byte & 0x7e)) return 0;
        value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = (int64_t)(value >> 1) ^ -(int64_t)(value & 1);
            return 1;
        }
        shift += 7;
        if (shift > 63) return 0;
    }
    return 0;
}

/* A string's bytes (not yet checked as UTF-8). */
static int read_string(Cursor *c, const unsigned char **start, Py_ssize_t *length) {
    int64_t n;
    if (!read_long(c, &n) || n < 0 || n > c->end - c->at) return 0;
    *start = c->at;
    *length = (Py_ssize_t)n;
    c->at += n;
    return 1;
}

static int is_id_byte(unsigned char b) {
    return (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') ||
           b == '.' || b == '_' || b == ':' || b == '-';
}

static int is_metric(const unsigned char *s, Py_ssize_t n) {
    if (n < 1 || n > MAX_METRIC_LENGTH || !(s[0] >= 'a' && s[0] <= 'z')) return 0;
    for (Py_ssize_t i = 1; i < n; i++) {
        unsigned char b = s[i];
        if (!((b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b == '_' || b == '.')) return 0;
    }
    return 1;
}

/* Valid UTF-8 of at most MAX_LABEL_LENGTH characters (as Python decodes it, strictly). */
static int is_label(const unsigned char *s, Py_ssize_t n) {
    int ascii = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i] & 0x80) {
            ascii = 0;
            break;
        }
    }
    if (ascii) return n <= MAX_LABEL_LENGTH;
    PyObject *text = PyUnicode_DecodeUTF8((const char *)s, n, "strict");
    if (text == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    Py_DECREF(text);
    return length <= MAX_LABEL_LENGTH;
}

static PyObject *check(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "check(payload, layouts, now_ms, max_future_ms, max_readings)");
        return NULL;
    }
    PyObject *payload = args[0], *layouts = args[1];
    if (!PyBytes_Check(payload) || !PyDict_Check(layouts)) {
        PyErr_SetString(PyExc_TypeError, "payload must be bytes and layouts a dict");
        return NULL;
    }
    long long now_ms = PyLong_AsLongLong(args[2]);
    long long max_future_ms = PyLong_AsLongLong(args[3]);
    long long max_readings = PyLong_AsLongLong(args[4]);
    if (PyErr_Occurred()) return NULL;

    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(payload);
    Py_ssize_t size = PyBytes_GET_SIZE(payload);
    PyObject *key;
    if (size >= 10 && data[0] == 0xc3 && data[1] == 0x01) {
        key = PyBytes_FromStringAndSize((const char *)data + 2, 8);
    } else if (size >= 5 && data[0] == 0x00) {
        key = PyBytes_FromStringAndSize((const char *)data, 5);
    } else {
        Py_RETURN_NONE;
    }
    if (key == NULL) return NULL;
    PyObject *spec = PyDict_GetItemWithError(layouts, key);
    Py_DECREF(key);
    if (spec == NULL) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    Py_ssize_t start;
    int layout;
    PyObject *suffix;
    if (!PyArg_ParseTuple(spec, "niO!", &start, &layout, &PyBytes_Type, &suffix)) return NULL;
    if (start < 0 || start > size || (layout != 1 && layout != 2)) Py_RETURN_NONE;

    Cursor c = {data + start, data + size};
    const unsigned char *id, *text;
    Py_ssize_t id_length, text_length;
    int64_t event_time, seq, count;
    if (!read_string(&c, &id, &id_length)) Py_RETURN_NONE;
    if (id_length < 1 || id_length > MAX_ID_LENGTH) Py_RETURN_NONE;
    for (Py_ssize_t i = 0; i < id_length; i++) {
        if (!is_id_byte(id[i])) Py_RETURN_NONE;
    }
    if (!read_long(&c, &event_time) || !read_long(&c, &seq)) Py_RETURN_NONE;
    if (event_time < EARLIEST_EVENT_MS || event_time > now_ms + max_future_ms || seq < 0) {
        Py_RETURN_NONE;
    }

    const unsigned char *keys[FAST_MAX_READINGS];
    Py_ssize_t key_lengths[FAST_MAX_READINGS];
    Py_ssize_t readings = 0;
    for (;;) {
        if (!read_long(&c, &count)) Py_RETURN_NONE;
        if (count == 0) break;
        if (count < 0) {
            int64_t block_size;
            if (count == INT64_MIN || !read_long(&c, &block_size) || block_size < 0) Py_RETURN_NONE;
            count = -count;
        }
        if (count > FAST_MAX_READINGS - readings) Py_RETURN_NONE;
        for (int64_t i = 0; i < count; i++) {
            const unsigned char *name;
            Py_ssize_t name_length;
            double value;
            if (!read_string(&c, &name, &name_length) || !is_metric(name, name_length)) {
                Py_RETURN_NONE;
            }
            if (c.end - c.at < 8) Py_RETURN_NONE;
            memcpy(&value, c.at, 8); /* little-endian IEEE 754, as on every supported host */
            c.at += 8;
            if (!isfinite(value)) Py_RETURN_NONE;
            for (Py_ssize_t j = 0; j < readings; j++) {
                if (key_lengths[j] == name_length && memcmp(keys[j], name, name_length) == 0) {
                    Py_RETURN_NONE; /* a repeated key: the Python path keeps the last value */
                }
            }
            keys[readings] = name;
            key_lengths[readings] = name_length;
            readings++;
        }
    }
    if (readings == 0 || readings > max_readings) Py_RETURN_NONE;
    if (!read_string(&c, &text, &text_length) || !is_label(text, text_length)) Py_RETURN_NONE;
    if (layout == 2) {
        int64_t branch;
        if (!read_long(&c, &branch)) Py_RETURN_NONE;
        if (branch == 1) {
            if (!read_string(&c, &text, &text_length) || !is_label(text, text_length)) {
                Py_RETURN_NONE;
            }
        } else if (branch != 0) {
            Py_RETURN_NONE;
        }
    }
    if (c.at != c.end) Py_RETURN_NONE; /* trailing bytes */

    Py_ssize_t suffix_length = PyBytes_GET_SIZE(suffix);
    PyObject *body = PyBytes_FromStringAndSize(NULL, size - start + suffix_length);
    if (body == NULL) return NULL;
    memcpy(PyBytes_AS_STRING(body), data + start, size - start);
    memcpy(PyBytes_AS_STRING(body) + size - start, PyBytes_AS_STRING(suffix), suffix_length);
    PyObject *device_id = PyUnicode_DecodeASCII((const char *)id, id_length, "strict");
    if (device_id == NULL) {
        Py_DECREF(body);
        return NULL;
    }
    return Py_BuildValue("(NLLnN)", device_id, (long long)event_time, (long long)seq, readings, body);
}

static PyMethodDef methods[] = {
    {"check", (PyCFunction)(void (*)(void))check, METH_FASTCALL,
     "check(payload, layouts, now_ms, max_future_ms, max_readings) -> "
     "(device_id, event_time, seq, readings, body) | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "streams._fastcheck",
    "The worker's fast accept path for measurement messages (see streams/_fastcheck.c).", -1,
    methods,
};

/* Raised with every change of check()'s interface or rules; streams/fastcheck.py checks it. */
#define FASTCHECK_VERSION 1

PyMODINIT_FUNC PyInit__fastcheck(void) {
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "VERSION", FASTCHECK_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
