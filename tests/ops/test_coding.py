import numpy as np
import tensorflow as tf

from tests.nets.test_loss import ANCHORS, raw_for_box
from utils.config.detect_config import DetectConfig
from utils.ops.decoder import Decoder
from utils.ops.letterbox import boxes_to_letterbox, letterbox_params


def postprocess(raws, anchors, image_hw, input_hw, score_threshold, box_coding="v3", letterbox=True):
    settings = DetectConfig(score_threshold=score_threshold, letterbox=letterbox)
    decoder = Decoder(np.asarray(anchors), input_hw, box_coding, settings)
    return decoder.detections(raws, image_hw)


def test_encoded_boxes_come_back_in_original_pixels():
    # A 200×400 (h×w) image letterboxed into 256×256: scale 0.64, y offset 64.
    image_hw = tf.constant([[200, 400]])
    scale, offset = letterbox_params(image_hw[0], (256, 256))
    original = np.array([[150.0, 50.0, 306.25, 175.0]], np.float32)  # 156.25×125 → 100×80 in the input
    box_in_input = boxes_to_letterbox(tf.constant(original), scale, offset).numpy()[0]
    raws = [np.full((1, g, g, 3, 7), -12.0, np.float32) for g in (32, 16, 8)]
    raws[2] = raw_for_box(list(box_in_input), level=2, anchor=0, grid=8, num_classes=2)
    result = postprocess([tf.constant(r) for r in raws], tf.constant(ANCHORS), image_hw, (256, 256),
                         score_threshold=0.5)
    assert int(result["count"][0]) == 1
    np.testing.assert_allclose(result["boxes"][0, 0].numpy(), original[0], atol=1e-2)
    assert int(result["classes"][0, 0]) == 0 and float(result["scores"][0, 0]) > 0.99


def test_v5_coded_box_from_a_neighbour_cell_comes_back_only_with_v5_decoding():
    from utils.ops.boxes import xyxy_to_cxcywh
    from utils.ops.coding import encode_xywh

    image_hw = tf.constant([[256, 256]])
    box = np.array([100.0, 100.0, 200.0, 180.0], np.float32)  # centre (150, 140) = cell (4.69, 4.38) at stride 32
    raw = np.full((1, 8, 8, 3, 7), -12.0, np.float32)
    cell = np.array([4.0, 3.0], np.float32)  # the cell above the centre's: y offset 1.38, within v5's reach (< 1.5)
    raw[0, 3, 4, 0, :4] = encode_xywh(xyxy_to_cxcywh(tf.constant(box)), cell, ANCHORS[6], 32, "v5").numpy()
    raw[0, 3, 4, 0, 4:6] = 12.0
    raws = [tf.constant(np.full((1, g, g, 3, 7), -12.0, np.float32)) for g in (32, 16)] + [tf.constant(raw)]
    v5 = postprocess(raws, tf.constant(ANCHORS), image_hw, (256, 256), score_threshold=0.5, box_coding="v5")
    np.testing.assert_allclose(v5["boxes"][0, 0].numpy(), box, atol=1e-2)
    v3 = postprocess(raws, tf.constant(ANCHORS), image_hw, (256, 256), score_threshold=0.5, box_coding="v3")
    assert np.abs(v3["boxes"][0, 0].numpy() - box).max() > 10


def test_stretched_images_map_boxes_back_per_axis():
    # A 200×400 (h×w) image stretched to 256×256: x scale 0.64, y scale 1.28, no offset.
    from utils.ops.letterbox import letterbox_image

    image_hw = tf.constant([[200, 400]])
    scale, offset = letterbox_params(image_hw[0], (256, 256), letterbox=False)
    np.testing.assert_allclose(scale.numpy(), [0.64, 1.28])
    np.testing.assert_allclose(offset.numpy(), [0.0, 0.0])
    original = np.array([[150.0, 50.0, 306.25, 112.5]], np.float32)  # → (96, 64)–(196, 144) in the input
    box_in_input = boxes_to_letterbox(tf.constant(original), scale, offset).numpy()[0]
    np.testing.assert_allclose(box_in_input, [96.0, 64.0, 196.0, 144.0], rtol=1e-6)
    raws = [np.full((1, g, g, 3, 7), -12.0, np.float32) for g in (32, 16, 8)]
    raws[2] = raw_for_box(list(box_in_input), level=2, anchor=0, grid=8, num_classes=2)
    result = postprocess([tf.constant(r) for r in raws], tf.constant(ANCHORS), image_hw, (256, 256),
                         score_threshold=0.5, letterbox=False)
    np.testing.assert_allclose(result["boxes"][0, 0].numpy(), original[0], atol=1e-2)
    assert letterbox_image(tf.zeros((200, 400, 3), tf.uint8), (256, 256), letterbox=False).shape == (256, 256, 3)


def test_class_aware_nms_equals_combined_nms():
    from utils.ops.nms import class_aware_nms

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 200, (2, 400, 2))
    boxes = tf.constant(np.concatenate([xy, xy + rng.uniform(5, 80, (2, 400, 2))], -1), tf.float32)
    scores = tf.constant(rng.uniform(0, 1, (2, 400, 4)) ** 3, tf.float32)
    for threshold in (0.05, 0.5, 0.999):
        ours = class_aware_nms(boxes, scores, 50, 0.45, threshold, (300, 300))
        reference = tf.image.combined_non_max_suppression(boxes[:, :, None], scores, 50, 50, 0.45, threshold,
                                                          clip_boxes=False)
        np.testing.assert_array_equal(ours[3].numpy(), reference.valid_detections.numpy())
        np.testing.assert_allclose(ours[1].numpy(), reference.nmsed_scores.numpy(), atol=1e-6)
        np.testing.assert_allclose(ours[0].numpy(), reference.nmsed_boxes.numpy(), atol=1e-3)
        np.testing.assert_array_equal(ours[2].numpy(), reference.nmsed_classes.numpy().astype(np.int32))
        # A static batch of one takes the loop-free path (the LiteRT export's): the same rows as in the batch.
        alone = class_aware_nms(boxes[1:], scores[1:], 50, 0.45, threshold, (300, 300))
        for ours_part, alone_part in zip(ours, alone, strict=True):
            np.testing.assert_array_equal(alone_part.numpy(), ours_part.numpy()[1:])
    assert int(ours[3][0]) < 50 and np.all(ours[0].numpy()[0, int(ours[3][0]):] == 0)  # padding rows are zero


def test_one_wild_box_does_not_change_the_nms_of_high_class_ids():
    """Two class-79 boxes at IoU 0.435 (just under the 0.44 threshold) both survive, whatever else is there. A
    shift derived from the candidates (2 · max|coord| + 1 per class) put them near 1.6e8, where float32 spacing is
    16 px: rounded there, their IoU became 0.444 and the second box was suppressed."""
    from utils.ops.nms import class_aware_nms

    boxes = np.zeros((1, 3, 4), np.float32)
    boxes[0, 0] = [100, 100, 200, 200]
    boxes[0, 1] = [139.4, 100, 239.4, 200]  # overlap 60.6 × 100: IoU 6060 / 13940 = 0.4347
    boxes[0, 2] = [-1e6, -1e6, 1e6, 1e6]  # one wild class-0 candidate (v3 decoding of a huge exp)
    scores = np.zeros((1, 3, 80), np.float32)
    scores[0, 0, 79], scores[0, 1, 79], scores[0, 2, 0] = 0.9, 0.8, 0.5
    result = class_aware_nms(tf.constant(boxes), tf.constant(scores), 10, 0.44, 0.25, (416, 416))
    assert int(result[3][0]) == 3
    np.testing.assert_array_equal(result[2][0, :3].numpy(), [79, 79, 0])
    np.testing.assert_allclose(result[0][0, 2].numpy(), [0, 0, 416, 416])  # clipped to the canvas
