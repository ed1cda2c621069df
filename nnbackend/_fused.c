/* Fused element-wise kernels for nnbackend's NumPy path (see nnbackend/fused.py, which is the only caller).
 *
 * Each kernel is one loop over contiguous memory doing what NumPy does in a chain of whole-array passes,
 * with the same operations in the same order and the same precision, so the results are bit-identical.
 * That needs IEEE arithmetic as written: the build passes -ffp-contract=off (no fused multiply-adds) and
 * never -ffast-math; sqrt is correctly rounded in both.
 *
 * The arrays arrive through the buffer protocol (C-contiguous, checked here by the protocol itself) and the
 * loops run without the GIL. No NumPy headers are needed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>

/* A build whose arithmetic is not IEEE as written (fast-math, or x87 extended precision) cannot match
 * NumPy bit for bit: refuse to compile, and the engine falls back to NumPy (setup.py marks the module
 * optional). */
#if defined(__FAST_MATH__) || (defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0)
#error "nnbackend._fused needs IEEE float arithmetic as written (no -ffast-math, FLT_EVAL_METHOD 0)"
#endif

/* No fused multiply-adds, whatever the compiler's default (clang-cl and older MSVC contract a * b + c under
 * /fp:precise; Windows on ARM64 always has FMA): the flags of setup.py say so too, where the compiler
 * takes them. */
#if defined(_MSC_VER) && !defined(__clang__)
#pragma fp_contract(off)
#elif defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* Bumped whenever a kernel's signature or arithmetic changes; fused.py refuses a stale build. */
#define KERNELS_VERSION 2

/* On x86-64 Linux with glibc the loops are compiled three times, for AVX-512, AVX2 and the SSE2 baseline,
 * and glibc's loader (ifunc, which musl lacks) picks the widest the CPU has: sqrt and division, not memory,
 * bound the Adam loop. Element-wise IEEE operations give the same bits at every width. */
#if defined(__linux__) && defined(__GLIBC__) && defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define WIDEST_VECTORS __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define WIDEST_VECTORS
#endif

/* One Adam step per element, in the order of Adam._update (nnbackend/optimizers/adam.py):
 * m = m * b1 + g * (1 - b1); v = v * b2 + (g * g) * (1 - b2);
 * out = p - m / (sqrt(v) / root_correction + eps) * step_size. */
#define ADAM_LOOP(T, SQRT)                                                                          \
    WIDEST_VECTORS static void adam_loop_##T(const T *p, const T *g, T *m, T *v, T *out, Py_ssize_t n, T b1, T omb1, \
                              T b2, T omb2, T root_correction, T eps, T step_size)                   \
    {                                                                                                \
        for (Py_ssize_t i = 0; i < n; i++) {                                                         \
            T gi = g[i];                                                                             \
            T mi = m[i] * b1 + gi * omb1;                                                            \
            T vi = v[i] * b2 + (gi * gi) * omb2;                                                     \
            m[i] = mi;                                                                               \
            v[i] = vi;                                                                               \
            out[i] = p[i] - (mi / (SQRT(vi) / root_correction + eps)) * step_size;                   \
        }                                                                                            \
    }

ADAM_LOOP(float, sqrtf)
ADAM_LOOP(double, sqrt)

/* A Dense layer's bias and ReLU in its fresh x @ W, in place: z = maximum(z + b, 0) row by row, as NumPy's
 * z += b; maximum(z, 0, out=z) (which gives +0.0 for -0.0 and keeps NaN). */
#define BIAS_RELU_LOOP(T)                                                                             \
    WIDEST_VECTORS static void bias_relu_loop_##T(T *z, const T *b, Py_ssize_t rows, Py_ssize_t cols)  \
    {                                                                                                 \
        for (Py_ssize_t r = 0; r < rows; r++) {                                                       \
            T *row = z + r * cols;                                                                    \
            for (Py_ssize_t j = 0; j < cols; j++) {                                                   \
                T v = row[j] + b[j];                                                                  \
                row[j] = v <= 0 ? (T)0 : v;                                                           \
            }                                                                                         \
        }                                                                                             \
    }

/* ReLU's backward in the incoming gradient's memory: g = g * (y > 0), the bool mask as 1.0 / 0.0 as NumPy
 * multiplies it (so -0.0 and NaN come out as NumPy's do). */
#define RELU_MASK_LOOP(T)                                                                             \
    WIDEST_VECTORS static void relu_mask_loop_##T(T *g, const T *y, Py_ssize_t n)                     \
    {                                                                                                 \
        for (Py_ssize_t i = 0; i < n; i++)                                                            \
            g[i] = g[i] * (y[i] > 0 ? (T)1 : (T)0);                                                   \
    }

BIAS_RELU_LOOP(float)
BIAS_RELU_LOOP(double)
RELU_MASK_LOOP(float)
RELU_MASK_LOOP(double)

static void release(Py_buffer *buffers, int count)
{
    for (int i = 0; i < count; i++)
        PyBuffer_Release(&buffers[i]);
}

/* Checks that the first `count` buffers hold the same number of items of `itemsize` bytes; returns that
 * number, or -1 with a ValueError set. */
static Py_ssize_t common_length(const char *kernel, Py_buffer *buffers, int count, Py_ssize_t itemsize)
{
    Py_ssize_t bytes = buffers[0].len;
    for (int i = 1; i < count; i++) {
        if (buffers[i].len != bytes) {
            PyErr_Format(PyExc_ValueError, "%s: array %d has %zd bytes, array 0 has %zd", kernel, i,
                         buffers[i].len, bytes);
            return -1;
        }
    }
    if (bytes % itemsize != 0) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes is not a whole number of %zd-byte items", kernel, bytes,
                     itemsize);
        return -1;
    }
    return bytes / itemsize;
}

#define ADAM_FUNCTION(T)                                                                              \
    static PyObject *adam_##T(PyObject *self, PyObject *args)                                         \
    {                                                                                                 \
        Py_buffer b[5]; /* p, g (read), m, v, out (written) */                                       \
        double b1, omb1, b2, omb2, root_correction, eps, step_size;                                   \
        (void)self;                                                                                   \
        if (!PyArg_ParseTuple(args, "y*y*w*w*w*ddddddd", &b[0], &b[1], &b[2], &b[3], &b[4], &b1, &omb1, \
                              &b2, &omb2, &root_correction, &eps, &step_size))                        \
            return NULL;                                                                              \
        Py_ssize_t n = common_length("adam", b, 5, (Py_ssize_t)sizeof(T));                                      \
        if (n < 0) {                                                                                  \
            release(b, 5);                                                                            \
            return NULL;                                                                              \
        }                                                                                             \
        Py_BEGIN_ALLOW_THREADS                                                                        \
        /* Constants rounded once to T, as NumPy rounds a Python float to the array's dtype. */       \
        adam_loop_##T((const T *)b[0].buf, (const T *)b[1].buf, (T *)b[2].buf, (T *)b[3].buf,         \
                      (T *)b[4].buf, n, (T)b1, (T)omb1, (T)b2, (T)omb2, (T)root_correction, (T)eps,   \
                      (T)step_size);                                                                  \
        Py_END_ALLOW_THREADS                                                                          \
        release(b, 5);                                                                                \
        Py_RETURN_NONE;                                                                               \
    }

ADAM_FUNCTION(float)
ADAM_FUNCTION(double)

#define BIAS_RELU_FUNCTION(T)                                                                         \
    static PyObject *bias_relu_##T(PyObject *self, PyObject *args)                                    \
    {                                                                                                 \
        Py_buffer b[2]; /* z (written), bias (read) */                                                \
        (void)self;                                                                                   \
        if (!PyArg_ParseTuple(args, "w*y*", &b[0], &b[1]))                                            \
            return NULL;                                                                              \
        Py_ssize_t size = (Py_ssize_t)sizeof(T), cols = b[1].len / size;                              \
        if (b[1].len % size != 0 || cols == 0 || b[0].len % (cols * size) != 0) {                     \
            PyErr_Format(PyExc_ValueError, "bias_relu: %zd bytes of z are not whole rows of %zd-byte "  \
                         "bias", b[0].len, b[1].len);                                                 \
            release(b, 2);                                                                            \
            return NULL;                                                                              \
        }                                                                                             \
        Py_BEGIN_ALLOW_THREADS                                                                        \
        bias_relu_loop_##T((T *)b[0].buf, (const T *)b[1].buf, b[0].len / (cols * size), cols);       \
        Py_END_ALLOW_THREADS                                                                          \
        release(b, 2);                                                                                \
        Py_RETURN_NONE;                                                                               \
    }

#define RELU_MASK_FUNCTION(T)                                                                         \
    static PyObject *relu_mask_##T(PyObject *self, PyObject *args)                                    \
    {                                                                                                 \
        Py_buffer b[2]; /* g (written), y (read) */                                                   \
        (void)self;                                                                                   \
        if (!PyArg_ParseTuple(args, "w*y*", &b[0], &b[1]))                                            \
            return NULL;                                                                              \
        Py_ssize_t n = common_length("relu_mask", b, 2, (Py_ssize_t)sizeof(T));                       \
        if (n < 0) {                                                                                  \
            release(b, 2);                                                                            \
            return NULL;                                                                              \
        }                                                                                             \
        Py_BEGIN_ALLOW_THREADS                                                                        \
        relu_mask_loop_##T((T *)b[0].buf, (const T *)b[1].buf, n);                                    \
        Py_END_ALLOW_THREADS                                                                          \
        release(b, 2);                                                                                \
        Py_RETURN_NONE;                                                                               \
    }

BIAS_RELU_FUNCTION(float)
BIAS_RELU_FUNCTION(double)
RELU_MASK_FUNCTION(float)
RELU_MASK_FUNCTION(double)

static PyMethodDef methods[] = {
    {"adam_float32", adam_float, METH_VARARGS,
     "adam_float32(p, g, m, v, out, b1, 1-b1, b2, 1-b2, root_correction, eps, step_size): one Adam step over "
     "float32 buffers; m, v and out are written."},
    {"adam_float64", adam_double, METH_VARARGS, "adam_float32 for float64 buffers."},
    {"bias_relu_float32", bias_relu_float, METH_VARARGS,
     "bias_relu_float32(z, b): z = maximum(z + b, 0) in place, z a C-contiguous (rows, len(b)) float32 buffer."},
    {"bias_relu_float64", bias_relu_double, METH_VARARGS, "bias_relu_float32 for float64 buffers."},
    {"relu_mask_float32", relu_mask_float, METH_VARARGS,
     "relu_mask_float32(g, y): g = g * (y > 0) in place, over float32 buffers of one length."},
    {"relu_mask_float64", relu_mask_double, METH_VARARGS, "relu_mask_float32 for float64 buffers."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "nnbackend._fused", "Fused element-wise kernels (see nnbackend/fused.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__fused(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "KERNELS_VERSION", KERNELS_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
