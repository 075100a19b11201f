// oneDNN (Debian libdnnl-dev, C API) and the few helpers AlignScope needs around its matmul primitive.
// Written as static inline functions so this system-library target needs no compiled sources.
#ifndef ALIGNSCOPE_CDNNL_SHIM_H
#define ALIGNSCOPE_CDNNL_SHIM_H

#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>

// libgomp, the OpenMP runtime Debian's oneDNN is built with: the thread count of parallel regions
// started by the calling thread.
extern void omp_set_num_threads(int);
extern int omp_get_max_threads(void);
extern int omp_get_thread_num(void);
// What `#pragma omp parallel num_threads(n)` compiles to (libgomp's ABI): runs fn(data) on n threads, the calling
// thread among them. Used without compiling this header with -fopenmp.
extern void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);

/// A matmul primitive for C (m, n) = alpha op(A) op(B) (+ C when accumulate), row-major, with the given
/// leading dimensions; A and B in bf16 when `bf16`, else f32; C always f32. Returns NULL when oneDNN
/// refuses the descriptor; `*status` says why.
static inline dnnl_primitive_t alignscope_matmul_create(
    dnnl_engine_t engine, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
    int64_t lda, int64_t ldb, int64_t ldc, int bf16, int accumulate, float alpha, dnnl_status_t *status)
{
    dnnl_data_type_t in = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t a_md, b_md, c_md;
    dnnl_dims_t a_dims = {m, k}, b_dims = {k, n}, c_dims = {m, n};
    dnnl_dims_t a_strides = {trans_a ? 1 : lda, trans_a ? lda : 1};
    dnnl_dims_t b_strides = {trans_b ? 1 : ldb, trans_b ? ldb : 1};
    dnnl_dims_t c_strides = {ldc, 1};
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_matmul_desc_t desc;
    dnnl_status_t s;
    if ((s = dnnl_memory_desc_init_by_strides(&a_md, 2, a_dims, in, a_strides)) != dnnl_success) goto done;
    if ((s = dnnl_memory_desc_init_by_strides(&b_md, 2, b_dims, in, b_strides)) != dnnl_success) goto done;
    if ((s = dnnl_memory_desc_init_by_strides(&c_md, 2, c_dims, dnnl_f32, c_strides)) != dnnl_success) goto done;
    if ((s = dnnl_matmul_desc_init(&desc, &a_md, &b_md, NULL, &c_md)) != dnnl_success) goto done;
    if ((s = dnnl_primitive_attr_create(&attr)) != dnnl_success) goto done;
    // Our own scratchpad: oneDNN's library-managed one is one global buffer shared between primitives.
    if ((s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user)) != dnnl_success) goto done;
    if (alpha != 1.0f && (s = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha)) != dnnl_success) goto done;
    if (accumulate) {
        if ((s = dnnl_post_ops_create(&ops)) != dnnl_success) goto done;
        if ((s = dnnl_post_ops_append_sum(ops, 1.0f)) != dnnl_success) goto done;
        if ((s = dnnl_primitive_attr_set_post_ops(attr, ops)) != dnnl_success) goto done;
    }
    if ((s = dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL)) != dnnl_success) goto done;
    s = dnnl_primitive_create(&prim, pd);
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    *status = s;
    return s == dnnl_success ? prim : NULL;
}

/// The implementation oneDNN chose for `prim` (e.g. "brg:avx512_core"), for benchmarks and notes.
static inline const char *alignscope_primitive_impl(dnnl_primitive_t prim) {
    const_dnnl_primitive_desc_t pd = NULL;
    const char *name = NULL;
    if (dnnl_primitive_get_primitive_desc(prim, &pd) != dnnl_success) return "?";
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) != dnnl_success || !name) return "?";
    return name;
}

/// Bytes of scratchpad `prim` needs (alignscope_matmul_execute's `scratch`).
static inline size_t alignscope_scratchpad_size(dnnl_primitive_t prim) {
    const_dnnl_primitive_desc_t pd = NULL;
    if (dnnl_primitive_get_primitive_desc(prim, &pd) != dnnl_success) return 0;
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    return md ? dnnl_memory_desc_get_size(md) : 0;
}

/// Runs a primitive made by alignscope_matmul_create on user pointers, with `scratch` of at least
/// alignscope_scratchpad_size(prim) bytes.
static inline dnnl_status_t alignscope_matmul_execute(
    dnnl_primitive_t prim, dnnl_engine_t engine, dnnl_stream_t stream, const void *a, const void *b, float *c,
    void *scratch)
{
    const_dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s = dnnl_primitive_get_primitive_desc(prim, &pd);
    if (s != dnnl_success) return s;
    const dnnl_memory_desc_t *a_md = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *b_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *c_md = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *s_md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL, ms = NULL;
    int nargs = 3;
    if ((s = dnnl_memory_create(&ma, a_md, engine, (void *)a)) != dnnl_success) goto done;
    if ((s = dnnl_memory_create(&mb, b_md, engine, (void *)b)) != dnnl_success) goto done;
    if ((s = dnnl_memory_create(&mc, c_md, engine, c)) != dnnl_success) goto done;
    if (s_md && dnnl_memory_desc_get_size(s_md) > 0) {
        if ((s = dnnl_memory_create(&ms, s_md, engine, scratch)) != dnnl_success) goto done;
        nargs = 4;
    }
    {
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}, {DNNL_ARG_SCRATCHPAD, ms}};
        s = dnnl_primitive_execute(prim, stream, nargs, args);
        if (s == dnnl_success) s = dnnl_stream_wait(stream);
    }
done:
    if (ma) dnnl_memory_destroy(ma);
    if (mb) dnnl_memory_destroy(mb);
    if (mc) dnnl_memory_destroy(mc);
    if (ms) dnnl_memory_destroy(ms);
    return s;
}

/// One block of a product split into blocks of C (`alignscope_matmul_blocks`): its primitive (planned for one
/// thread) and where its A, B and C start.
typedef struct {
    dnnl_primitive_t prim;
    const void *a, *b;
    float *c;
} alignscope_block_t;

typedef struct {
    dnnl_engine_t engine;
    dnnl_stream_t *streams;
    const alignscope_block_t *blocks;
    /// Thread t runs blocks bounds[t] ..< bounds[t + 1].
    const int *bounds;
    void **scratch;
    dnnl_status_t *status;
} alignscope_blocks_job_t;

static void alignscope_blocks_worker(void *p) {
    alignscope_blocks_job_t *job = (alignscope_blocks_job_t *)p;
    int t = omp_get_thread_num();
    for (int i = job->bounds[t]; i < job->bounds[t + 1]; i++) {
        const alignscope_block_t *b = &job->blocks[i];
        dnnl_status_t s = alignscope_matmul_execute(b->prim, job->engine, job->streams[t], b->a, b->b, b->c, job->scratch[t]);
        if (s != dnnl_success) job->status[t] = s;
    }
}

/// Runs the blocks on `threads` OpenMP threads (thread t: blocks bounds[t] ..< bounds[t + 1], its own stream and
/// scratchpad). Inside the parallel region oneDNN runs each primitive on its calling thread, so every block is one
/// single-threaded primitive whatever the thread count. Returns the first failure, else dnnl_success.
static inline dnnl_status_t alignscope_matmul_blocks(
    dnnl_engine_t engine, dnnl_stream_t *streams, const alignscope_block_t *blocks, const int *bounds,
    void **scratch, int threads, dnnl_status_t *status)
{
    for (int t = 0; t < threads; t++) status[t] = dnnl_success;
    alignscope_blocks_job_t job = {engine, streams, blocks, bounds, scratch, status};
    if (threads == 1) alignscope_blocks_worker(&job);
    else GOMP_parallel(alignscope_blocks_worker, &job, (unsigned)threads, 0);
    for (int t = 0; t < threads; t++) if (status[t] != dnnl_success) return status[t];
    return dnnl_success;
}

#endif
