"""Model code: backbones, necks, heads, the assembled detector and its loss."""
