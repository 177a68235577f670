"""VGG features and the style/content distances that training, Gatys and evaluation share (torch)."""
