/* tabpilot's tree-ensemble kernel: raw scores of a flattened forest (see forest.py).
 *
 * Built once per machine by native.py (cc -O3 -shared), loaded with ctypes; every array
 * of tp_model is owned by numpy on the Python side. A row meets three parts in turn:
 *
 *   1. CTR columns (CatBoost target statistics on categorical codes): a hash of the row's
 *      projection is looked up in a sorted table; the value is appended to the row.
 *   2. Binary trees (LightGBM, XGBoost, scikit-learn forests) on bit words. Each row
 *      is first turned into 32-bit words: for a numeric column, bit k says
 *      "x <= threshold k" of that column's sorted thresholds; for a categorical column,
 *      bit c says "the code is c". Every column has two copies of its words, one where
 *      a missing value sets all bits and one where it clears them, so a node only ever
 *      asks `words[node.word] & node.mask`: whether the value is below its threshold (or
 *      in its category set), with missing values going the node's default way. Leaves
 *      are nodes that lead to themselves, so that several rows walk a tree together
 *      without branches, their walks overlapping in the CPU.
 *   3. Oblivious trees (CatBoost): split d gives bit d of the leaf index; a row of a
 *      small request finds the leaves of TREE_LANES trees before adding them, so that
 *      their loads overlap.
 *
 * Rows are scored in blocks so that a tree's nodes stay in cache across the block, and
 * a block's words in the core's cache. A row alone (a request of one row, or the rows a
 * block leaves over) walks TREE_LANES trees together instead, so that the cache misses of
 * a large model's walks overlap: a wine_quality ensemble of 9,000 trees and 4,300
 * oblivious trees answers one row 2.4x faster than one tree after another.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define TP_NUMERIC 1        /* column kinds */
#define TP_CATEGORICAL 2

#define TP_GREATER 0        /* oblivious split: bit = x > border, NaN gives 0 */
#define TP_GREATER_NAN 1    /* bit = x > border, NaN gives 1 */
#define TP_EQUAL 2          /* bit = code == border, NaN is code -1 */

#define TP_CTR_CAT 0        /* projection element: the code's hash */
#define TP_CTR_GREATER 1    /* 1 if x > border */
#define TP_CTR_EQUAL 2      /* 1 if code == border */

#define LANES 16             /* rows walked down one tree together */
#define TREE_LANES 16        /* trees one row walks down together (4: 2x slower; 24, 32: slower) */

typedef struct {
    uint32_t mask;
    uint32_t word;      /* the word's index, shifted left by the model's node_shift */
    int32_t child[2];   /* left (bit set), right; nodes from first_leaf on are leaves */
} tp_node;

typedef struct {
    double border;
    int32_t kind;
    int32_t column;
} tp_split;

typedef struct {
    double border;
    int32_t kind;
    int32_t column;
    int32_t hashes;     /* offset of the code -> hash table (codes -1 .. n-2) */
    int32_t n_hashes;
} tp_ctr_elem;

typedef struct {
    int32_t block_shift;    /* rows per block: 1 << block_shift (>= LANES), from native.py */
    int32_t node_shift;     /* the shift the nodes' word indexes carry (native.py sets it to
                               the block shift, so a walk adds the lane instead of shifting) */
    int32_t n_cols;
    int32_t n_ext;          /* n_cols + n_ctrs */
    int32_t n_slots;        /* raw outputs per row */
    int32_t float32_inputs; /* compare features as float32 (XGBoost, CatBoost) */
    int32_t float32_sums;   /* add leaf values in float32, as XGBoost does */
    const double *init;     /* n_slots starting values of the sums */
    /* binary trees */
    int32_t n_words;                /* bit words per row */
    const uint8_t *col_kind;        /* n_cols: 0 unused, TP_NUMERIC, TP_CATEGORICAL */
    const int32_t *col_word;        /* first word; missing-sets copy, then missing-clears */
    const int32_t *col_words;       /* words in one copy */
    const int32_t *edge_begin;      /* n_cols + 1 */
    const double *edges;            /* each numeric column's thresholds, sorted */
    int32_t n_trees;
    int32_t first_leaf;             /* node i >= first_leaf is leaf i - first_leaf */
    const int32_t *roots;
    const int32_t *slots;
    const tp_node *nodes;
    const double *leaves;           /* leaf_dim values per leaf, added to slots slot.. */
    int32_t leaf_dim;               /* 1, or a forest classifier's class count */
    /* oblivious trees */
    int32_t n_otrees;
    const int32_t *odepth;
    const int32_t *osplit_begin;
    const int64_t *oleaf_begin;
    const int32_t *oslot;
    const int32_t *odim;
    const tp_split *osplits;
    const double *oleaves;
    /* CTR columns */
    int32_t n_ctrs;
    const int32_t *ctr_elem_begin;  /* n_ctrs + 1 */
    const tp_ctr_elem *ctr_elems;
    const int64_t *ctr_key_begin;   /* n_ctrs + 1 */
    const uint64_t *ctr_keys;       /* sorted within each ctr */
    const double *ctr_values;
    const double *ctr_default;
    const int64_t *hash_values;
} tp_model;

static inline double feature(const tp_model *m, double x) {
    return m->float32_inputs ? (double)(float)x : x;
}

static inline int64_t code_of(double x) {
    return isnan(x) ? -1 : (int64_t)x;
}

/* -- 1. CTR columns ------------------------------------------------------------------ */

static inline uint64_t combine(uint64_t a, uint64_t b) {
    const uint64_t magic = 0x4906ba494954cb65ULL;
    return magic * (a + magic * b);
}

static double ctr_value(const tp_model *m, int32_t c, const double *row) {
    uint64_t h = 0;
    for (int32_t e = m->ctr_elem_begin[c]; e < m->ctr_elem_begin[c + 1]; ++e) {
        const tp_ctr_elem *el = &m->ctr_elems[e];
        double x = feature(m, row[el->column]);
        if (el->kind == TP_CTR_CAT) {
            int64_t code = code_of(x);
            if (code < -1 || code >= el->n_hashes - 1) return m->ctr_default[c];
            h = combine(h, (uint64_t)m->hash_values[el->hashes + code + 1]);
        } else if (el->kind == TP_CTR_GREATER) {
            h = combine(h, x > el->border ? 1 : 0);
        } else {
            h = combine(h, (double)code_of(x) == el->border ? 1 : 0);
        }
    }
    int64_t lo = m->ctr_key_begin[c], hi = m->ctr_key_begin[c + 1];
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (m->ctr_keys[mid] < h) lo = mid + 1; else hi = mid;
    }
    if (lo < m->ctr_key_begin[c + 1] && m->ctr_keys[lo] == h) return m->ctr_values[lo];
    return m->ctr_default[c];
}

/* -- 2. binary trees on bit words ----------------------------------------------------- */

/* Word i of row r of a block sits at words[(i << block_shift) + r]: the rows walking a tree
 * together read their words side by side, from one base. */
static void row_words(const tp_model *m, const double *row, uint32_t *w) {
    const int32_t S = m->block_shift;
    for (int32_t f = 0; f < m->n_cols; ++f) {
        const int32_t kind = m->col_kind[f];
        if (!kind) continue;
        const int32_t n = m->col_words[f];
        uint32_t *set = w + ((int64_t)m->col_word[f] << S), *clear = set + ((int64_t)n << S);
        const double x = feature(m, row[f]);
        if (isnan(x)) {
            for (int32_t i = 0; i < n; ++i) { set[(int64_t)i << S] = ~0U; clear[(int64_t)i << S] = 0; }
        } else if (kind == TP_CATEGORICAL) {
            for (int32_t i = 0; i < n; ++i) set[(int64_t)i << S] = clear[(int64_t)i << S] = 0;
            if (x >= 0 && x < 32.0 * n) {
                const uint32_t code = (uint32_t)x;
                set[(int64_t)(code >> 5) << S] = clear[(int64_t)(code >> 5) << S] = 1U << (code & 31);
            }
        } else {
            int32_t lo = m->edge_begin[f], hi = m->edge_begin[f + 1];
            while (lo < hi) {  /* b = the number of thresholds below x */
                int32_t mid = lo + (hi - lo) / 2;
                if (m->edges[mid] < x) lo = mid + 1; else hi = mid;
            }
            const int32_t b = lo - m->edge_begin[f];  /* bits k >= b: x <= threshold k */
            for (int32_t i = 0; i < n; ++i) {
                const int32_t first = b - 32 * i;
                const uint32_t bits = first <= 0 ? ~0U : first >= 32 ? 0 : ~0U << first;
                set[(int64_t)i << S] = clear[(int64_t)i << S] = bits;
            }
        }
    }
}

static inline void add_values(double *o, const double *values, int32_t dim) {
    for (int32_t k = 0; k < dim; ++k) o[k] += values[k];
}

static inline void add_leaf(const tp_model *m, double *o, int32_t at) {
    const int32_t d = m->leaf_dim;
    const double *leaf = m->leaves + (int64_t)(at - m->first_leaf) * d;
    if (m->float32_sums) { *o = (double)((float)*o + (float)*leaf); return; }  /* d is 1 */
    add_values(o, leaf, d);
}

/* One row down every tree, TREE_LANES trees at a time: a walk is a chain of loads, each
 * waiting on the last, so one row walking one tree leaves the CPU idle on its cache
 * misses; walks of several trees overlap them. Leaves are still added in tree order. */
static void score_row(const tp_model *m, const uint32_t *w, double *o) {
    const int32_t first_leaf = m->first_leaf;
    const int32_t S = m->block_shift, N = m->node_shift;
    int32_t t = 0;
    for (; t + TREE_LANES <= m->n_trees; t += TREE_LANES) {
        int32_t at[TREE_LANES];
        for (int32_t k = 0; k < TREE_LANES; ++k) at[k] = m->roots[t + k];
        int32_t active;
        do {  /* a leaf's node leads to itself: walks that arrived wait there */
            active = 0;
            for (int32_t k = 0; k < TREE_LANES; ++k) {
                const tp_node *nd = &m->nodes[at[k]];
                at[k] = nd->child[(w[(int64_t)(nd->word >> N) << S] & nd->mask) == 0];
                active |= at[k] < first_leaf;
            }
        } while (active);
        for (int32_t k = 0; k < TREE_LANES; ++k) add_leaf(m, o + m->slots[t + k], at[k]);
    }
    /* the trees left over one by one: the groups above keep a fixed width, which the
     * compiler unrolls (a last, narrower group made wine_quality's ensemble 15 % slower) */
    for (; t < m->n_trees; ++t) {
        int32_t at = m->roots[t];
        while (at < first_leaf) {
            const tp_node *nd = &m->nodes[at];
            at = nd->child[(w[(int64_t)(nd->word >> N) << S] & nd->mask) == 0];
        }
        add_leaf(m, o + m->slots[t], at);
    }
}

static void score_trees(const tp_model *m, const uint32_t *words, int64_t n, double *out) {
    const int32_t first_leaf = m->first_leaf;
    const int32_t S = m->block_shift, N = m->node_shift;
    const int64_t lanes_until = N == S ? n : 0;  /* lanes need words laid out as the nodes say */
    for (int32_t t = 0; t < m->n_trees; ++t) {
        const int32_t root = m->roots[t], slot = m->slots[t];
        int64_t r0 = 0;
        for (; r0 + LANES <= lanes_until; r0 += LANES) {
            const uint32_t *w = words + r0;
            int32_t at[LANES];
            for (int32_t k = 0; k < LANES; ++k) at[k] = root;
            int32_t active;
            do {  /* a leaf's node leads to itself: lanes that arrived wait there */
                active = 0;
                for (int32_t k = 0; k < LANES; ++k) {
                    const tp_node *nd = &m->nodes[at[k]];
                    at[k] = nd->child[(w[nd->word + k] & nd->mask) == 0];
                    active |= at[k] < first_leaf;
                }
            } while (active);
            for (int32_t k = 0; k < LANES; ++k)
                add_leaf(m, out + (r0 + k) * m->n_slots + slot, at[k]);
        }
    }
    /* the last rows (and requests of a few rows) one by one */
    for (int64_t r = lanes_until - lanes_until % LANES; r < n; ++r)
        score_row(m, words + r, out + r * m->n_slots);
}

/* -- 3. oblivious trees --------------------------------------------------------------- */

static inline uint32_t oblivious_index(const tp_model *m, const tp_split *s, int32_t depth,
                                       const double *row) {
    uint32_t index = 0;
    for (int32_t d = 0; d < depth; ++d) {
        double x = feature(m, row[s[d].column]);
        int bit;
        if (s[d].kind == TP_EQUAL) bit = (double)code_of(x) == s[d].border;
        else if (isnan(x)) bit = s[d].kind == TP_GREATER_NAN;
        else bit = x > s[d].border;
        index |= (uint32_t)bit << d;
    }
    return index;
}

/* A block of rows meets one tree after another, so that each tree's splits and leaves
 * stay in cache across the block. A few rows (fewer than LANES) each find their leaves
 * TREE_LANES trees at a time before adding any: the leaf values of thousands of trees
 * lie far apart, and their loads then overlap. Both add a row's leaves in tree order. */
static void score_oblivious(const tp_model *m, const double *rows, int64_t n, double *out) {
    if (n >= LANES) {
        for (int32_t t = 0; t < m->n_otrees; ++t) {
            const tp_split *s = m->osplits + m->osplit_begin[t];
            const int32_t depth = m->odepth[t], dim = m->odim[t], slot = m->oslot[t];
            const double *leaves = m->oleaves + m->oleaf_begin[t];
            for (int64_t r = 0; r < n; ++r) {
                add_values(out + r * m->n_slots + slot, leaves +
                           (int64_t)oblivious_index(m, s, depth, rows + r * m->n_ext) * dim, dim);
            }
        }
        return;
    }
    for (int64_t r = 0; r < n; ++r) {
        const double *row = rows + r * m->n_ext;
        double *o = out + r * m->n_slots;
        for (int32_t t0 = 0; t0 < m->n_otrees; t0 += TREE_LANES) {
            const int32_t lanes = m->n_otrees - t0 < TREE_LANES ? m->n_otrees - t0 : TREE_LANES;
            const double *leaf[TREE_LANES];
            for (int32_t k = 0; k < lanes; ++k) {
                const int32_t t = t0 + k;
                const uint32_t index = oblivious_index(m, m->osplits + m->osplit_begin[t],
                                                       m->odepth[t], row);
                leaf[k] = m->oleaves + m->oleaf_begin[t] + (int64_t)index * m->odim[t];
            }
            for (int32_t k = 0; k < lanes; ++k)
                add_values(o + m->oslot[t0 + k], leaf[k], m->odim[t0 + k]);
        }
    }
}

/* Raw scores of n_rows rows of X (row-major, n_cols wide) into out (n_rows x n_slots),
 * starting from init. Scratch space: ext holds block * n_ext doubles (CTR columns),
 * words block * n_words words (binary trees). */
void tp_predict(const tp_model *m, const double *X, int64_t n_rows, double *out, double *ext,
                uint32_t *words) {
    for (int64_t r = 0; r < n_rows; ++r)
        memcpy(out + r * m->n_slots, m->init, sizeof(double) * (size_t)m->n_slots);
    const int64_t block = (int64_t)1 << m->block_shift;
    for (int64_t start = 0; start < n_rows; start += block) {
        const int64_t n = n_rows - start < block ? n_rows - start : block;
        const double *rows = X + start * m->n_cols;
        double *o = out + start * m->n_slots;
        if (m->n_ctrs) {
            for (int64_t r = 0; r < n; ++r) {
                double *e = ext + r * m->n_ext;
                memcpy(e, rows + r * m->n_cols, sizeof(double) * (size_t)m->n_cols);
                for (int32_t c = 0; c < m->n_ctrs; ++c) e[m->n_cols + c] = ctr_value(m, c, e);
            }
            rows = ext;
        }
        if (m->n_trees) {
            for (int64_t r = 0; r < n; ++r) row_words(m, rows + r * m->n_ext, words + r);
            score_trees(m, words, n, o);
        }
        if (m->n_otrees) score_oblivious(m, rows, n, o);
    }
}

int tp_abi_version(void) { return 8; }

int tp_lanes(void) { return LANES; }
