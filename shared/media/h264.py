"""A tiny H.264 intra-only encoder: every macroblock is I_PCM (raw samples), so no transform is needed.

The stream is Constrained Baseline, 4:2:0, 8 bit, every frame an IDR picture: valid for any decoder
(ffmpeg, browsers, players) and small enough at the local backend's sizes. Spec: ITU-T H.264 7.3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PROFILE_IDC = 66  # Baseline
CONSTRAINT_FLAGS = 0xC0  # constraint_set0 + constraint_set1: Constrained Baseline
LEVEL_IDC = 30  # 3.0: I_PCM is ~1.5 bytes a pixel, far above the lower levels' bit rates
_MB_TYPE_I_PCM = 25
_NAL_SPS, _NAL_PPS, _NAL_IDR = 0x67, 0x68, 0x65  # nal_ref_idc 3 with types 7, 8 and 5
# Two zero bytes followed by 0x00-0x03 would look like a start code: insert 0x03 (7.4.1.1).
_EMULATION = re.compile(b"\x00\x00(?=[\x00-\x03])")


class _BitWriter:
    """Big-endian bit writer with the Exp-Golomb codes of H.264 (9.1)."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._acc = 0
        self._nbits = 0

    def u(self, nbits: int, value: int) -> None:
        self._acc = (self._acc << nbits) | (value & ((1 << nbits) - 1))
        self._nbits += nbits
        while self._nbits >= 8:
            self._nbits -= 8
            self._out.append((self._acc >> self._nbits) & 0xFF)
        self._acc &= (1 << self._nbits) - 1

    def ue(self, value: int) -> None:
        code = value + 1
        self.u(code.bit_length() - 1, 0)
        self.u(code.bit_length(), code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align(self) -> None:
        if self._nbits:
            self.u(8 - self._nbits, 0)

    def raw(self, data: bytes) -> None:
        self._out += data  # only ever called byte-aligned (after align)

    def rbsp(self) -> bytes:
        self.u(1, 1)  # rbsp_stop_one_bit, then zero bits to the byte boundary
        self.align()
        return bytes(self._out)


def _nal(header: int, rbsp: bytes) -> bytes:
    return bytes((header,)) + _EMULATION.sub(b"\x00\x00\x03", rbsp)


@dataclass(frozen=True)
class Frame:
    """One 4:2:0 picture: Y is width*height bytes, U and V are (width/2)*(height/2) bytes each."""

    y: bytes
    u: bytes
    v: bytes


class IntraEncoder:
    """Encodes frames of one size (multiples of 16) into NAL units (no start codes, for MP4)."""

    def __init__(self, width: int, height: int) -> None:
        if width % 16 or height % 16 or width <= 0 or height <= 0:
            raise ValueError("width and height must be positive multiples of 16")
        self.width, self.height = width, height
        self._idr_pic_id = 0

    def sps(self) -> bytes:
        w = _BitWriter()
        w.u(8, PROFILE_IDC)
        w.u(8, CONSTRAINT_FLAGS)
        w.u(8, LEVEL_IDC)
        w.ue(0)  # seq_parameter_set_id
        w.ue(0)  # log2_max_frame_num_minus4
        w.ue(2)  # pic_order_cnt_type 2: output order = decoding order, nothing to signal per slice
        w.ue(1)  # max_num_ref_frames
        w.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
        w.ue(self.width // 16 - 1)
        w.ue(self.height // 16 - 1)
        w.u(1, 1)  # frame_mbs_only_flag
        w.u(1, 1)  # direct_8x8_inference_flag
        w.u(1, 0)  # frame_cropping_flag
        w.u(1, 0)  # vui_parameters_present_flag: MP4 carries the timing
        return _nal(_NAL_SPS, w.rbsp())

    def pps(self) -> bytes:
        w = _BitWriter()
        w.ue(0)  # pic_parameter_set_id
        w.ue(0)  # seq_parameter_set_id
        w.u(1, 0)  # entropy_coding_mode_flag: CAVLC
        w.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
        w.ue(0)  # num_slice_groups_minus1
        w.ue(0)  # num_ref_idx_l0_default_active_minus1
        w.ue(0)  # num_ref_idx_l1_default_active_minus1
        w.u(1, 0)  # weighted_pred_flag
        w.u(2, 0)  # weighted_bipred_idc
        w.se(0)  # pic_init_qp_minus26
        w.se(0)  # pic_init_qs_minus26
        w.se(0)  # chroma_qp_index_offset
        w.u(1, 1)  # deblocking_filter_control_present_flag: lets slices turn the filter off
        w.u(1, 0)  # constrained_intra_pred_flag
        w.u(1, 0)  # redundant_pic_cnt_present_flag
        return _nal(_NAL_PPS, w.rbsp())

    def encode(self, frame: Frame) -> bytes:
        """One IDR picture as a single slice NAL unit."""
        w = _BitWriter()
        w.ue(0)  # first_mb_in_slice
        w.ue(7)  # slice_type: I, and every slice of the picture is I
        w.ue(0)  # pic_parameter_set_id
        w.u(4, 0)  # frame_num: always 0 on an IDR picture
        w.ue(self._idr_pic_id)  # consecutive IDR pictures must differ here (7.4.3)
        w.u(1, 0)  # no_output_of_prior_pics_flag
        w.u(1, 0)  # long_term_reference_flag
        w.se(0)  # slice_qp_delta
        w.ue(1)  # disable_deblocking_filter_idc: raw samples need no filtering
        for block in self._macroblocks(frame):
            w.ue(_MB_TYPE_I_PCM)
            w.align()  # pcm_alignment_zero_bits
            w.raw(block)
        self._idr_pic_id ^= 1
        return _nal(_NAL_IDR, w.rbsp())

    def _macroblocks(self, frame: Frame) -> list[bytes]:
        """Each macroblock's 256 luma then 64 Cb and 64 Cr samples, in raster order."""
        width, cwidth = self.width, self.width // 2
        y, u, v = frame.y, frame.u, frame.v
        blocks = []
        for my in range(self.height // 16):
            for mx in range(width // 16):
                luma = [(my * 16 + r) * width + mx * 16 for r in range(16)]
                chroma = [(my * 8 + r) * cwidth + mx * 8 for r in range(8)]
                blocks.append(
                    b"".join(y[i : i + 16] for i in luma)
                    + b"".join(u[i : i + 8] for i in chroma)
                    + b"".join(v[i : i + 8] for i in chroma)
                )
        return blocks
