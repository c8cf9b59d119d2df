#include "core/common.h"
int main(void)
{
    return 0;
}
